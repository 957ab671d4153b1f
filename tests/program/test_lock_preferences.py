"""What a relock keeps and leaves out: packages.excluded drops a dependency from the resolution
(uv's --excludes), and a relock keeps the current lock's pins unless `--upgrade`."""

from __future__ import annotations

from pathlib import Path

from compare.wheels import make_wheel
from helpers import local_index_profile, run_builder

from builder.stages.lock import parse_lock


def _project(tmp_path: Path, extra: str = "", *, dep_versions: tuple[str, ...] = ("1.0",)) -> Path:
    wheels = tmp_path / "wheels"
    wheels.mkdir(exist_ok=True)
    # an app that needs a dependency with no wheel for the target (audio-separator's diffq) ...
    make_wheel(
        wheels, "rbprobe-app", "1.0", {"rbprobe_app.py": ""}, requires=["rbprobe-dep", "rbprobe-nowheel"]
    )
    for version in dep_versions:
        make_wheel(wheels, "rbprobe-dep", version, {"rbprobe_dep.py": ""})
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "locks").mkdir(exist_ok=True)
    (tmp_path / "profiles/rl.toml").write_text(local_index_profile(extra))
    return tmp_path


def _pins(project: Path) -> dict[str, str]:
    lock = project / "locks/rl.lock"
    return {n: p.version for n, p in parse_lock(lock.read_text(), lock).pins.items()}


EXCLUDED = '[packages.excluded]\nrbprobe-nowheel = "no wheel for this target; the program never imports it"'


def test_an_excluded_dependency_is_left_out_of_the_resolution(tmp_path: Path) -> None:
    project = _project(tmp_path)
    # ... which no index has: without the exclusion there is no solution
    assert run_builder("lock", "--profile", "rl", root=project).returncode != 0
    project = _project(tmp_path, EXCLUDED)
    proc = run_builder("lock", "--profile", "rl", root=project)
    assert proc.returncode == 0, proc.stderr
    assert _pins(project) == {"rbprobe-app": "1.0", "rbprobe-dep": "1.0"}
    text = (project / "locks/rl.lock").read_text()
    assert "# excluded rbprobe-nowheel: no wheel for this target" in text
    assert run_builder("lock", "--check", "--profile", "rl", root=project).returncode == 0


def test_a_relock_keeps_the_current_pins_and_upgrade_takes_the_newest(tmp_path: Path) -> None:
    project = _project(tmp_path, EXCLUDED)
    assert run_builder("lock", "--profile", "rl", root=project).returncode == 0
    # a newer release appears on the index; `builder lock` (after any profile edit) resolves again
    _project(tmp_path, EXCLUDED, dep_versions=("1.0", "2.0"))
    assert run_builder("lock", "--profile", "rl", root=project).returncode == 0
    assert _pins(project)["rbprobe-dep"] == "1.0"  # the relock moved nothing it did not have to
    assert run_builder("lock", "--upgrade", "--profile", "rl", root=project).returncode == 0
    assert _pins(project)["rbprobe-dep"] == "2.0"

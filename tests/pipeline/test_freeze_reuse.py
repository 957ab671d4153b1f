"""A failed try's frozen folder is taken again when the freeze's inputs are unchanged: [bench] and
the packaging code are not among them, [freeze] and the freeze's own code are."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from builder.openmp.frozen import FrozenOpenMP, Relink
from builder.profile import load_profile
from builder.stages import freeze_reuse
from builder.stages.freeze import FreezeResult, plan_freeze
from builder.stages.inputs import BUILDER_DIR, FREEZE_MODULE, builder_modules, freeze_inputs_hash, inputs_hash


def _hashes(project: Path) -> tuple[str, str]:
    profile = load_profile("minimal-linux-x86_64", project / "profiles")
    plan = plan_freeze(profile, project / "site-packages", project, project / "build" / profile.name)
    args = (project, profile, plan, "sha256:lock", Path(sys.executable))
    return inputs_hash(*args), freeze_inputs_hash(*args)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_bench_change_alone_keeps_the_freeze_and_a_freeze_change_does_not(entry_project: Path) -> None:
    project = entry_project
    dist_key, freeze_key = _hashes(project)
    assert dist_key != freeze_key  # the dist's key also covers the packaging code
    _edit(project / "profiles" / "_base.toml", "max-size-mb = 500", "max-size-mb = 600")
    _edit(project / "profiles" / "_base.toml", "max-files = 1200", "max-files = 1500")
    assert _hashes(project) == (dist_key, freeze_key)
    _edit(project / "profiles" / "_base.toml", "strip = true", "strip = false")
    changed = _hashes(project)
    assert changed[0] != dist_key and changed[1] != freeze_key


def test_the_freeze_key_reads_the_freeze_code_not_the_packaging_code() -> None:
    names = {p.relative_to(BUILDER_DIR).as_posix() for p in builder_modules(FREEZE_MODULE)}
    assert {"stages/freeze.py", "tools/pyinstaller.py", "openmp/frozen.py", "program/entry.py"} <= names
    assert not names & {
        "stages/package.py",
        "artifact/archive.py",
        "stages/check.py",
        "stages/smoke.py",
        "stages/build.py",
    }


def _result(out: Path) -> FreezeResult:
    (out / "stems").mkdir(parents=True)
    relink = Relink(
        path="_internal/a/libgomp.so.1",
        link="../libgomp.so.1",
        primary="_internal/libgomp.so.1",
        sha256="sha256:ab",
    )
    omp = FrozenOpenMP(runtimes=("_internal/libgomp.so.1",), relinked=(relink,), applied=True)
    return FreezeResult(
        folder=out / "stems",
        pyinstaller="6.22.3",
        stripped=3,
        bundled=frozenset({"torch", "numpy"}),
        openmp=omp,
    )


def test_a_kept_freeze_comes_back_whole_for_its_own_key_only(tmp_path: Path) -> None:
    out = tmp_path / "frozen"
    result = _result(out)
    freeze_reuse.save(out, "sha256:one", result)
    assert freeze_reuse.reusable(out, "sha256:one") == result
    assert freeze_reuse.reusable(out, "sha256:two") is None
    (out / "stems").rmdir()  # the package stage moved it into the dist
    assert freeze_reuse.reusable(out, "sha256:one") is None


def test_a_damaged_or_missing_record_means_freeze_again(tmp_path: Path) -> None:
    out = tmp_path / "frozen"
    result = _result(out)
    assert freeze_reuse.reusable(out, "sha256:one") is None
    freeze_reuse.save(out, "sha256:one", result)
    record = freeze_reuse.record_path(out)
    record.write_text(json.dumps({"freeze_inputs_hash": "sha256:one", "result": {"program": "stems"}}))
    assert freeze_reuse.reusable(out, "sha256:one") is None
    record.write_text("{not json")
    assert freeze_reuse.reusable(out, "sha256:one") is None
    freeze_reuse.forget(out)
    assert not record.exists()

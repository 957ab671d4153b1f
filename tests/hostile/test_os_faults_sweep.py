"""Every builder command that takes a path or a profile, over every kind of OS fault: one `error:`
line naming the file, the documented exit code, never a traceback.

The faults are real, not simulated: a missing file, a folder where a file belongs and the reverse,
a symlink loop, a broken link, deeply nested TOML and JSON, integers over Python's digit limit, a
60 KB dotted key (under the size bound: only the shape check stops it), files over the size
bounds; permission denied with root's DAC capabilities dropped (root passes every permission
check otherwise); a full and a read-only file system (small tmpfs mounts, which need root:
elsewhere those cases are skipped, saying so). All cases run through builder's real `main` in
two processes (fault_runner.py), one per privilege level: ~230 cases in about 10 s.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from release.helpers import make_dist

from builder.bounds import MAX_LOCK_BYTES, MAX_MANIFEST_BYTES, MAX_PROFILE_BYTES

from .privileges import IS_ROOT, preexec

NAME = "minimal-linux-x86_64"
ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("fault_runner.py")


@dataclass(frozen=True)
class Layout:
    """One case's own project (profiles/, locks/), dist and output folder."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "project"

    @property
    def profile(self) -> Path:
        return self.root / "profiles" / f"{NAME}.toml"

    @property
    def lock(self) -> Path:
        return self.root / "locks" / f"{NAME}.lock"

    @property
    def dist(self) -> Path:
        return self.base / "dist" / "tiny-linux-x86_64"

    @property
    def manifest(self) -> Path:
        return self.dist / "manifest.json"


def _replace(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _write(data: str | bytes) -> Callable[[Path], None]:
    def fault(path: Path) -> None:
        _replace(path)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return fault


def _sparse(size: int) -> Callable[[Path], None]:
    def fault(path: Path) -> None:  # a file over the bound without writing its bytes
        _replace(path)
        with open(path, "wb") as fh:
            fh.truncate(size)

    return fault


FAULTS: dict[str, Callable[[Path], None]] = {
    "missing": _replace,
    "folder": lambda p: (_replace(p), p.mkdir()),
    "file": _write("not a folder\n"),
    "loop": lambda p: (_replace(p), p.symlink_to(p.name)),
    "broken": lambda p: (_replace(p), p.symlink_to("gone")),
    "perm": lambda p: p.chmod(0),
    "deep-toml": _write("x = " + "[" * 3000 + "]" * 3000 + "\n"),
    "digits-toml": _write('description = "x"\nx = ' + "9" * 5000 + "\n"),
    "dotted-toml": _write("a" + ".a" * 30000 + " = 1\n"),  # 60 KB, under the size bound: ~40 s in tomllib
    "huge-profile": _write("# padding\n" * (MAX_PROFILE_BYTES // 10 + 1)),
    "huge-lock": _sparse(MAX_LOCK_BYTES + 1),
    "deep-json": _write("[" * 100_000 + "]" * 100_000),
    "digits-json": _write('{"schema": 1, "files": [], "size": ' + "9" * 5000 + "}"),
    "huge-manifest": _sparse(MAX_MANIFEST_BYTES + 1),
}

# (what the fault is on, fault) -> exit code and a word of the one line
EXPECT: dict[tuple[str, str], tuple[int, str]] = {
    ("profile", "missing"): (2, "no profile"),
    ("profile", "folder"): (2, "not a regular file (a folder)"),
    ("profile", "loop"): (10, "symlink loop"),
    ("profile", "broken"): (10, "broken symlink"),
    ("profile", "perm"): (22, "permission denied"),
    ("profile", "deep-toml"): (24, "nested more than"),
    ("profile", "digits-toml"): (24, "digits"),
    ("profile", "dotted-toml"): (24, "dotted key"),
    ("profile", "huge-profile"): (24, "KB"),
    ("lock", "missing"): (9, "no lock"),
    ("lock", "folder"): (9, "not a regular file (a folder)"),
    ("lock", "loop"): (10, "symlink loop"),
    ("lock", "broken"): (10, "broken symlink"),
    ("lock", "perm"): (22, "permission denied"),
    ("lock", "huge-lock"): (24, "KB"),
    ("manifest", "missing"): (10, "manifest.json"),
    ("manifest", "folder"): (10, "not a regular file (a folder)"),
    ("manifest", "loop"): (10, "symlink loop"),
    ("manifest", "broken"): (10, "broken symlink"),
    ("manifest", "perm"): (22, "permission denied"),
    ("manifest", "deep-json"): (24, "nested more than"),
    ("manifest", "digits-json"): (24, "digits"),
    ("manifest", "huge-manifest"): (24, "KB"),
    ("dist", "missing"): (10, ""),
    ("dist", "file"): (10, ""),
    ("dist", "loop"): (10, "symlink loop"),
    ("dist", "perm"): (22, "permission denied"),
    ("out", "ro"): (23, "read-only file system"),
    ("out", "full"): (23, "no space left"),
    ("out", "perm"): (22, "permission denied"),
}

Argv = Callable[[Layout], list[str]]


def _at_root(*args: str) -> Argv:
    return lambda lay: ["--root", str(lay.root), *args]


def _on_dist(*args: str, twice: bool = False) -> Argv:
    return lambda lay: [*args, str(lay.dist), *([str(lay.dist)] if twice else [])]


def _named(*args: str, twice: bool = False) -> Argv:
    return lambda lay: ["--root", str(lay.root), *args, NAME, *([NAME] if twice else [])]


QUICK = ("--repeat", "1", "--seconds", "0.1")
BY_PROFILE: dict[str, Argv] = {
    "lock --check": _at_root("lock", "--check", "--profile", NAME),
    "lock": _at_root("lock", "--profile", NAME),  # the profile is read before uv is started
    "build": _at_root("build", "--profile", NAME),
    "bench": _named("bench", *QUICK),
    "compare": _named("compare", *QUICK, twice=True),
    "tune": _named("tune", *QUICK, "--dry-run"),
    "doctor": _named("doctor", "--no-cost"),
    "bisect": _named("bisect", *QUICK, twice=True),
}
ALL_PROFILES: dict[str, Argv] = {"profiles": _at_root("profiles"), "matrix": _at_root("matrix")}
BY_DIST: dict[str, Argv] = {
    "verify": _on_dist("verify"),
    "inspect": _on_dist("inspect"),
    "diff": _on_dist("diff", twice=True),
    "sbom": _on_dist("sbom"),
}
MEASURING: dict[str, Argv] = {
    "bench": _on_dist("bench", *QUICK),
    "compare": _on_dist("compare", *QUICK, twice=True),
    "tune": _on_dist("tune", *QUICK, "--dry-run"),
    "doctor": _on_dist("doctor", "--no-cost"),
}


def _no_env(lay: Layout) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Case:
    argv: Argv
    on: str  # profile, lock, manifest, dist, out
    fault: str
    env: Callable[[Layout], dict[str, str]] = _no_env

    def target(self, lay: Layout) -> Path:
        return lay.base / "OUT" if self.on == "out" else Path(getattr(lay, self.on))

    def expect(self) -> tuple[int, str]:
        if (self.on, self.fault) == ("profile", "missing") and self.argv in BY_PROFILE.values():
            if self.argv not in (BY_PROFILE["lock --check"], BY_PROFILE["lock"], BY_PROFILE["build"]):
                return 10, "no profile"  # a runtime argument: no such path, and no such profile
        return EXPECT[self.on, self.fault]


def _faults(on: str) -> list[str]:
    return [f for (kind, f) in EXPECT if kind == on]


def _writers() -> dict[str, tuple[Argv, Callable[[Layout], dict[str, str]]]]:
    """Commands that write, pointed at OUT: a read-only or a full tmpfs, or a folder of mode 000."""
    return {
        "sbom --out": (
            lambda lay: ["sbom", str(lay.dist), "--out", str(lay.base / "OUT" / "s.json")],
            _no_env,
        ),
        "init": (lambda lay: ["init", str(lay.base / "OUT" / "proj")], _no_env),
        "build (work dir)": (
            _at_root("build", "--profile", NAME),
            lambda lay: {"BUILDER_WORK_DIR": str(lay.base / "OUT" / "work")},
        ),
    }


def _cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for cmd, argv in {**BY_PROFILE, **ALL_PROFILES}.items():
        for fault in _faults("profile"):
            cases[f"{cmd} / profile {fault}"] = Case(argv, "profile", fault)
    for cmd in ("lock --check", "build", "bench", "tune", "doctor", "compare"):
        for fault in _faults("lock"):
            cases[f"{cmd} / lock {fault}"] = Case(BY_PROFILE[cmd], "lock", fault)
    for cmd, argv in {**BY_DIST, **{f"{k} DIST": v for k, v in MEASURING.items()}}.items():
        for fault in _faults("manifest"):
            if fault == "missing" and (cmd.endswith("DIST") or cmd == "inspect"):
                continue  # a frozen folder without a manifest is a runtime to measure and inspect
            cases[f"{cmd} / manifest {fault}"] = Case(argv, "manifest", fault)
        for fault in _faults("dist"):
            cases[f"{cmd} / dist {fault}"] = Case(argv, "dist", fault)
    cases["openmp / dist loop"] = Case(_on_dist("openmp"), "dist", "loop")
    cases["openmp / dist perm"] = Case(_on_dist("openmp"), "dist", "perm")
    cases["clean --out / out perm"] = Case(
        lambda lay: ["--root", str(lay.root), "clean", "--out", str(lay.base / "OUT")], "out", "perm"
    )
    for cmd, (argv, env) in _writers().items():
        for fault in _faults("out"):
            cases[f"{cmd} / out {fault}"] = Case(argv, "out", fault, env)
    return cases


CASES = _cases()


def _mount_tmpfs(where: Path, options: str) -> bool:
    """A small tmpfs at `where` (root only: elsewhere the full and read-only cases are skipped)."""
    where.mkdir()
    if not (IS_ROOT and sys.platform.startswith("linux") and shutil.which("mount")):
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return proc.returncode == 0


def _fill(folder: Path) -> None:
    """Write until the file system says ENOSPC: a full disk, for real."""
    try:
        with open(folder / "filler", "wb", buffering=0) as fh:
            while True:
                fh.write(b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc


def _template(base: Path) -> Path:
    tpl = base / "template"
    for sub in ("profiles", "locks"):
        (tpl / "project" / sub).mkdir(parents=True)
    for name in ("_base.toml", f"{NAME}.toml"):
        shutil.copy(ROOT / "profiles" / name, tpl / "project" / "profiles" / name)
    shutil.copy(ROOT / "locks" / f"{NAME}.lock", tpl / "project" / "locks" / f"{NAME}.lock")
    make_dist(tpl)
    return tpl


def _prepare(base: Path, mounts: dict[str, Path]) -> tuple[dict[str, dict[str, object]], dict[str, str]]:
    """Each case's own copy of the template with its fault in place: (runnable cases, skipped with why)."""
    tpl = _template(base)
    runnable: dict[str, dict[str, object]] = {}
    skipped: dict[str, str] = {}
    for n, (cid, case) in enumerate(sorted(CASES.items())):
        if case.fault in ("ro", "full") and case.fault not in mounts:
            skipped[cid] = f"a {case.fault} tmpfs needs root to mount; not simulated"
            continue
        lay = Layout(base / f"case{n}")
        shutil.copytree(tpl, lay.base, symlinks=True)
        target = case.target(lay)
        if case.on == "out":
            if case.fault == "perm":
                target.mkdir()
                target.chmod(0)
            else:
                target.symlink_to(mounts[case.fault], target_is_directory=True)
        else:
            FAULTS[case.fault](target)
        if cid.startswith("sbom --out"):  # sbom needs what a real build's manifest has
            manifest = json.loads(lay.manifest.read_text())
            manifest.update(lock={"path": "x.lock", "sha256": "sha256:" + "0" * 64}, packages=[])
            lay.manifest.write_text(json.dumps(manifest))
        runnable[cid] = {"argv": case.argv(lay), "env": case.env(lay), "perm": case.fault == "perm"}
    return runnable, skipped


def _run_batch(
    cases: dict[str, dict[str, object]], base: Path, *, drop: bool
) -> dict[str, dict[str, object]]:
    if not cases:
        return {}
    payload = {cid: {"argv": c["argv"], "env": c["env"]} for cid, c in cases.items()}
    env = {**os.environ, "HOME": str(base), "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.run(
        [sys.executable, str(RUNNER)], input=json.dumps(payload), capture_output=True, text=True,
        timeout=300, env=env, cwd=base, **(preexec() if drop else {}),  # type: ignore[arg-type]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results: dict[str, dict[str, object]] = json.loads(proc.stdout)
    return results


def _restore(base: Path) -> None:
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o755)


@pytest.fixture(scope="module")
def sweep() -> Iterator[tuple[dict[str, dict[str, object]], dict[str, str]]]:
    base = Path(tempfile.mkdtemp(prefix="builder-os-faults-"))
    mounts: dict[str, Path] = {}
    try:
        if _mount_tmpfs(base / "mnt-full", "size=64k"):
            mounts["full"] = base / "mnt-full"
            _fill(mounts["full"])
        if _mount_tmpfs(base / "mnt-ro", "size=64k,ro"):
            mounts["ro"] = base / "mnt-ro"
        cases, skipped = _prepare(base, mounts)
        # Root passes every permission check: the permission cases run without the capabilities
        # that let it (elsewhere permission bits apply to the user running the tests anyway).
        dropped = {cid: c for cid, c in cases.items() if c["perm"] and IS_ROOT}
        as_is = {cid: c for cid, c in cases.items() if cid not in dropped}
        results = {**_run_batch(as_is, base, drop=False), **_run_batch(dropped, base, drop=True)}
        yield results, skipped
    finally:
        for mount in mounts.values():
            subprocess.run(["umount", str(mount)], check=False)
        _restore(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks, FIFOs and permission bits are POSIX here")
@pytest.mark.parametrize("cid", sorted(CASES))
def test_an_os_fault_is_one_line_with_its_code(
    cid: str, sweep: tuple[dict[str, dict[str, object]], dict[str, str]]
) -> None:
    results, skipped = sweep
    if cid in skipped:
        pytest.skip(skipped[cid])
    code, word = CASES[cid].expect()
    got = results[cid]
    stderr = str(got["stderr"])
    assert "Traceback" not in stderr, stderr[-2000:]
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, stderr
    assert (got["code"], word in errors[0]) == (code, True), errors[0]

"""Install: a uv-managed venv with the target's Python, synced from the lock.

An unchanged lock (and interpreter) reuses the existing venv: a stamp file
records what it was built from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ForeignTargetError
from builder.fsutil import atomic_write_text, staged_dir
from builder.profile import Profile
from builder.stages.lock import Lock, sources
from builder.targets import host_target
from builder.tools import uv
from builder.venvs import venv_python
from builder.wheelhouse import Wheelhouse

STAMP = ".builder-stamp.json"


@dataclass(frozen=True, kw_only=True)
class InstallResult:
    venv: Path
    python: Path
    reused: bool
    sources: dict[str, str]  # package -> where it came from (only the special ones)


def require_native(profile: Profile, stage: str) -> None:
    if not profile.target.is_host():
        host = host_target()
        raise ForeignTargetError(
            f"{stage} of {profile.name} must run on {profile.target.name}; this host is "
            f"{host.name if host else 'an unknown platform'}",
            hint="lock and audit run anywhere; install, freeze and bench run on the target "
            f"(see `builder matrix` for its runner: {profile.target.runner})",
        )


def install(profile: Profile, lock: Lock, venv: Path, wheelhouse: Wheelhouse | None) -> InstallResult:
    require_native(profile, "install")
    interpreter = uv.find_python(profile.python)
    src = sources(profile, wheelhouse)
    stamp = {
        "lock": lock.hash(),
        "python": str(interpreter),
        "uv": uv.version(),
    }
    stamp_path = venv / STAMP
    if stamp_path.is_file() and venv_python(venv).exists():
        try:
            if json.loads(stamp_path.read_text()) == stamp:
                return InstallResult(venv=venv, python=venv_python(venv), reused=True, sources=src.notes)
        except json.JSONDecodeError:
            pass  # a damaged stamp means rebuild
    with staged_dir(venv) as tmp:
        # --relocatable: the venv is built under a temporary name and renamed into place.
        uv.run(["venv", "--quiet", "--relocatable", "--python", str(interpreter), str(tmp)])
        uv.run([
            "pip", "sync", "--quiet",
            "--python", str(venv_python(tmp)),
            "--require-hashes", "--compile-bytecode",
            *[f"--only-binary={ob}" for ob in profile.only_binary],
            *src.args,
            str(lock.path),
        ])  # fmt: skip
        atomic_write_text(tmp / STAMP, json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    return InstallResult(venv=venv, python=venv_python(venv), reused=False, sources=src.notes)

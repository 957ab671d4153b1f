"""What a subject's folder says, read from disk with nothing run: packages with sizes, how it was
installed, its OpenMP files, its size (compare's static sections, bench's size budget)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.errors import InputError
from builder.measure.take.subject import Subject
from builder.venvs import site_packages_of


def size_of(rt: Subject) -> dict[str, Any] | None:
    """{bytes, files} of what the subject is on disk; None when it cannot be read."""
    from builder.artifact.inspect import inspect_path

    try:
        info = inspect_path(rt.path)
    except (InputError, FileNotFoundError):
        return None
    return {"bytes": info.total_bytes, "files": info.files}


def static_facts(rt: Subject) -> dict[str, Any]:
    """Packages with sizes, install method and tools, OpenMP files: read from disk, nothing run."""
    from builder.artifact.inspect import inspect_path

    info = inspect_path(rt.path)
    facts: dict[str, Any] = {
        "python": info.python,
        "platform": info.platform,
        "total_bytes": info.total_bytes,
        "files": info.files,
        "packages": {
            p.name.lower(): {"name": p.name, "version": p.version, "size": p.size}
            for p in info.packages
            if p.version
        },
        "install": install_method(rt),
        "openmp_files": openmp_files(rt),
    }
    return facts


def install_method(rt: Subject) -> dict[str, Any]:
    """Who installed what: pyvenv.cfg's creator, each package's INSTALLER, builder's stamp or manifest."""
    out: dict[str, Any] = {}
    if rt.kind == "venv":
        cfg = rt.path / "pyvenv.cfg"
        values = {
            k.strip(): v.strip()
            for k, _, v in (ln.partition("=") for ln in cfg.read_text().splitlines())
            if v
        }
        creator = next((f"{k} {values[k]}" for k in ("uv", "virtualenv") if k in values), "python -m venv")
        out["venv_created_by"] = creator
        installers: dict[str, int] = {}

        for f in sorted(site_packages_of(rt.path).glob("*.dist-info/INSTALLER")):
            name = f.read_text(encoding="utf-8", errors="replace").strip() or "?"
            installers[name] = installers.get(name, 0) + 1
        out["installers"] = installers
        stamp = rt.path / ".builder-stamp.json"
        if stamp.is_file():
            s = json.loads(stamp.read_text())
            out["builder_stamp"] = {"lock_sha256": s.get("lock"), "uv": s.get("uv")}
    else:
        from builder.artifact.manifest import MANIFEST, read_manifest

        if not (rt.path / MANIFEST).is_file():  # a team's own freeze; a damaged manifest is an error
            return {"frozen": "no manifest.json"}
        m = read_manifest(rt.path)
        out["tools"] = m.get("tools")
        out["sources"] = m.get("sources")
        out["lock"] = (m.get("lock") or {}).get("sha256")
        out["frozen_by"] = f"PyInstaller {(m.get('tools') or {}).get('pyinstaller')}"
    return out


def program_folder(rt: Subject) -> Path:
    """Where a runtime's files are: a venv, or a frozen program's onedir folder, the one its
    executable sits in (a dist's `<[program].name>/`, as its manifest names it; a frozen folder
    without a manifest is that folder itself)."""
    return rt.path if rt.kind == "venv" else Path(rt.argv[0]).parent


def openmp_files(rt: Subject) -> dict[str, Any]:
    from builder.openmp.audit import audit

    try:
        rep = audit(program_folder(rt))
    except InputError as exc:
        return {"error": exc.one_line(), "runtimes": []}
    return {
        "runtimes": [
            {"path": r.path, "family": r.family_name, "size": r.size, "links": list(r.names)}
            for r in rep.runtimes
        ],
        "primary": rep.primary,
    }

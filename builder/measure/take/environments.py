"""bisect's intermediate environments: what a venv has installed, and A's packages plus a subset
of B's installed with uv from its cache, in a venv kept under build/bisect/ and reused by its
package set."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.fsutil import atomic_write_text, staged_dir
from builder.log import Log
from builder.measure.take.subject import Subject
from builder.tools import uv
from builder.venvs import site_packages_of, venv_python

STAMP = ".bisect-stamp.json"


def installed(venv: Path) -> dict[str, dict[str, Any]]:
    """name -> {name, version, requires (canonical names, markers evaluated)} from dist-info METADATA."""
    out: dict[str, dict[str, Any]] = {}
    for meta_path in sorted(site_packages_of(venv).glob("*.dist-info/METADATA")):
        meta = HeaderParser().parsestr(meta_path.read_text(encoding="utf-8", errors="replace"))
        requires = set()
        for raw in meta.get_all("Requires-Dist") or []:
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                requires.add(canonicalize_name(req.name))
        name = canonicalize_name(meta.get("Name", meta_path.parent.name.split("-")[0]))
        out[name] = {
            "name": meta.get("Name", name),
            "version": meta.get("Version", "?"),
            "requires": sorted(requires),
        }
    return out


def _base_python(venv: Path) -> Path:
    py = venv_python(venv)
    return py.resolve() if py.exists() else py


def build_env(
    a_rt: Subject,
    a_pkgs: Mapping[str, Any],
    b_pkgs: Mapping[str, Any],
    subset: Sequence[str],
    *,
    work: Path,
    find_links: Sequence[Path],
    log: Log,
) -> tuple[Subject, bool]:
    """A's packages + `subset` at B's versions, in a venv reused by its package set. (runtime, built?)"""
    pins = {n: a_pkgs[n]["version"] for n in a_pkgs} | {n: b_pkgs[n]["version"] for n in subset}
    lines = sorted(f"{b_pkgs.get(n, a_pkgs.get(n))['name']}=={v}" for n, v in pins.items())
    key = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    venv = work / key
    stamp: dict[str, Any] = {"pins": lines, "python": str(_base_python(a_rt.path))}
    built = False
    if not ((venv / STAMP).is_file() and json.loads((venv / STAMP).read_text()) == stamp):
        with staged_dir(venv) as tmp:
            uv.run(["venv", "--quiet", "--relocatable", "--python", stamp["python"], str(tmp)])
            req = tmp / "requirements.txt"
            req.write_text("\n".join(lines) + "\n", encoding="utf-8")
            args = [
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--python",
                str(venv_python(tmp)),
                "-r",
                str(req),
                *[f"--find-links={p}" for p in find_links],
            ]
            # Everything is in uv's cache when A and B were installed on this machine: try offline first.
            if uv.run([*args, "--offline"], check=False).returncode != 0:
                uv.run(args)
            atomic_write_text(tmp / STAMP, json.dumps(stamp, indent=2) + "\n")
        built = True
    rt = replace(
        a_rt,
        label="A+" + ",".join(b_pkgs[n]["name"] for n in subset),
        path=venv,
        argv=(str(venv_python(venv)), *a_rt.argv[1:]),
    )
    log.line(f"    {'built' if built else 'reused'} {venv.name}: A + {', '.join(subset)}")
    return rt, built

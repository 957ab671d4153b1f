"""The report a user pastes: the runtime's identity, redaction, and the plain text (pure but `identity`).

Redacted by default: user names, home paths and host names become placeholders, and the only
environment values shown are the thread and affinity variables (host.WATCHED_ENV).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA = "runtime-builder/runtime-doctor/1"


def dist_folder(executable: Path) -> Path | None:
    """The dist a frozen program lies in: dist/P/<program>/<program>, beside manifest.json."""
    for folder in (executable.parent.parent, executable.parent):
        if (folder / "manifest.json").is_file():
            return folder
    return None


def identity(executable: Path, profile: str | None) -> dict[str, Any]:
    """Profile, dist SHA-256 (of SHA256SUMS, as `builder build` reports it) and build date."""
    folder = dist_folder(executable)
    if folder is None:
        return {"profile": profile, "dist_sha256": None, "build_date": None, "dist": None}
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        sums = (folder / "SHA256SUMS").read_bytes()
    except (OSError, ValueError):
        return {"profile": profile, "dist_sha256": None, "build_date": None, "dist": folder.name}
    epoch = manifest.get("source_date_epoch")
    return {
        "profile": manifest.get("profile", profile),
        "dist_sha256": "sha256:" + hashlib.sha256(sums).hexdigest(),
        "build_date": time.strftime("%Y-%m-%d", time.gmtime(epoch)) if isinstance(epoch, int) else None,
        "dist": folder.name,
    }


def redact(value: Any, secrets: Mapping[str, str]) -> Any:
    """`value` with every occurrence of each secret (home, user, host) replaced by its placeholder;
    longest first, so that a home path goes before the user name inside it."""
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 3:
                value = value.replace(secret, secrets[secret])
        return value
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def _figures(f: Mapping[str, Any]) -> list[str]:
    m = f.get("machine") or {}
    cal = f.get("calibration") or {}
    build = f.get("build") or {}
    return [
        f"  machine: {m.get('cpu_model') or 'unknown CPU'}, {m.get('cores')} CPUs ({f.get('usable_cpus')} usable), "
        f"instruction sets {', '.join(m.get('isa') or []) or 'unknown'}, {m.get('memory_mb')} MB",
        f"  build machine: {build.get('cpu_model') or 'no fingerprint'}"
        + (f", {build.get('cores')} CPUs, {', '.join(build.get('isa') or [])}" if build else ""),
        f"  threads: {f.get('threads')} intra-op, {f.get('interop')} inter-op; precision {f.get('precision')}",
        "  thread variables at start: "
        + (", ".join(f"{k}={v}" for k, v in sorted((f.get("env_parent") or {}).items())) or "none"),
        "  OpenMP loaded: " + ("; ".join(str(o["path"]) for o in f.get("openmp") or []) or "none seen"),
        f"  calibration: {cal.get('total_s')} s here, {f.get('build_calibration_s')} s at the build; other processes "
        f"kept {f.get('others_busy_cores')} cores busy meanwhile",
    ]


def render_text(doc: Mapping[str, Any]) -> str:
    """The plain-text report: identity, verdict, each cause, the closing figure, the figures."""
    ident = doc["runtime"]
    lines = [
        f"runtime doctor: {doc['program']} (profile {ident.get('profile')}, dist {ident.get('dist_sha256')}, "
        f"built {ident.get('build_date')})",
        f"verdict: {doc['verdict']}",
    ]
    for i, c in enumerate(doc["causes"], 1):
        lines.append(f"  {i}. [{c['id']}] {c['title']}")
        lines += [f"       evidence: {e}" for e in c["evidence"]]
        lines.append(f"       fix: {c['fix']}")
    lines += [f"  note: {n}" for n in doc["notes"]]
    closing = doc.get("closing")
    lines.append(closing["text"] if closing else "no fingerprint of the build machine to compare with")
    lines += ["figures:", *_figures(doc["figures"])]
    if doc.get("redacted"):
        lines.append("(redacted: user, home and host names replaced; only thread variables shown)")
    return "\n".join(lines) + "\n"

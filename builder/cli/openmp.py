"""`builder openmp PATH`: audit (any target, any host), plan/fix, verify (native venv only)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from builder.cli.common import emit_json
from builder.cli.params import CheckedPath
from builder.errors import ForeignTargetError
from builder.openmp.apply import apply_plan
from builder.openmp.audit import audit
from builder.openmp.model import AuditReport
from builder.openmp.plan import describe, plan_fix
from builder.openmp.result import OpenMPResult
from builder.openmp.verify import VerifyReport, openmp_packages, verify
from builder.venvs import existing_venv_python

_HOST_FORMAT = {"linux": "elf", "darwin": "macho", "win32": "pe"}


def audit_lines(report: AuditReport) -> list[str]:
    lines = [
        f"{report.root} ({report.kind}, {report.binaries} binaries: {', '.join(report.formats) or 'none'})"
    ]
    for rt in report.runtimes:
        mark = "*" if rt.path == report.primary else " "
        lines.append(f"{mark} {rt.path}  [{rt.family_name}, {rt.size} bytes, {rt.sha256}]")
        for name in rt.names:
            if name != rt.path:
                lines.append(f"    also as {name}")
        users = report.users(rt.path)
        lines.append(f"    loaded by {len(users)} binaries" + (f", e.g. {users[0]}" if users else ""))
    lines.append(f"torch core: {report.torch_core or '(none)'}")
    lines.append(f"primary: {report.primary or '(none)'} ({report.primary_reason})")
    for binary, request in report.unresolved:
        lines.append(f"unresolved: {binary} asks for {request} (not in this tree: system or another machine)")
    lines.append(f"{len(report.runtimes)} OpenMP runtime file(s)")
    return lines


def verify_lines(result: VerifyReport) -> list[str]:
    lines = []
    for o in result.orders:
        status = "ok  " if not o.problems else "FAIL"
        lines.append(f"{status} import {' -> '.join(o.order)}: {len(o.runtimes)} OpenMP runtime(s) loaded")
        lines += [f"     {p}" for p in o.problems]
    return lines


def _check_native(report: AuditReport) -> None:
    if report.kind != "venv":
        raise ForeignTargetError(f"{report.root}: --verify needs a venv (its python runs the probe)")
    formats = set(report.formats) - {"pe"} if sys.platform != "win32" else set(report.formats)
    # Linux and macOS wheels carry stray .exe launchers (setuptools); judge by the other formats.
    host = _HOST_FORMAT.get(sys.platform)
    if formats and host not in formats:
        raise ForeignTargetError(f"{report.root}: built for another platform ({', '.join(sorted(formats))})")


@click.command("openmp")
@click.argument("path", type=CheckedPath(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--fix", is_flag=True, help="Replace every other copy by a symlink to the primary.")
@click.option("--dry-run", is_flag=True, help="Print the fix plan; touch nothing.")
@click.option("--verify", "do_verify", is_flag=True, help="Prove one runtime per process (native venv only).")
def openmp(path: Path, as_json: bool, fix: bool, dry_run: bool, do_verify: bool) -> None:
    """Audit the OpenMP runtimes in PATH (a venv, site-packages, a frozen folder or a --target folder)."""
    out = OpenMPResult(audit=audit(path))
    report = out.audit
    lines = audit_lines(report)
    if do_verify:
        _check_native(report)  # before touching anything
    if fix or dry_run:
        plan = plan_fix(report)
        out = replace(out, plan=plan)
        lines += ["", "plan" + (" (dry run: nothing changed)" if dry_run else "") + ":"]
        lines += ["  " + line for line in describe(plan)]
        if fix and not dry_run:
            changes = apply_plan(plan)
            after = audit(path)
            out = replace(out, changes=changes, after=after)
            lines.append(
                f"changed {len(changes)} file(s); {len(after.runtimes)} OpenMP runtime file(s) remain"
            )
    if do_verify:
        python = existing_venv_python(Path(report.root))
        checked = verify(python, openmp_packages(report))
        out = replace(out, verify=checked)
        lines += ["", "verify:"] + ["  " + line for line in verify_lines(checked)]
    if as_json:
        emit_json(out.to_json())
    else:
        click.echo("\n".join(lines))
    if out.verify is not None:
        out.verify.raise_if_failed()

"""Plan the fix: every copy but the primary becomes a relative symlink to it, once the symbols check out.

Why a symlink under the original name: the dependents keep their load commands, signatures and
GNU version requirements untouched; the loader opens the same file (same inode) whatever the name,
so glibc and dyld map it once. Deleting the copy breaks the dependents' imports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from builder.openmp.formats import BY_NAME, Symbols, sniff
from builder.openmp.model import Action, AuditReport, OpenMPLibrary, Plan, Refusal

SymbolReader = Callable[[Path, str], Symbols]

WINDOWS_NOTE = (
    "Windows: audit only. A symlink is no fix there (creating one needs Developer Mode or admin rights, "
    "zip and installer tools copy its target, and the loader keys modules by base name, so a second name "
    "still maps a second copy); rewiring import tables would void Authenticode signatures. Copies that share "
    "a base name are already mapped once by the loader."
)
WINDOWS_REFUSAL = "Windows DLL: audit only (see notes)"
MACHO_NOTE = (
    "Mach-O: the symlink edits no binary, so no code signature changes; rewiring load commands would need "
    "re-signing, which only codesign on macOS can do, so it is not done from other hosts."
)


def read_symbols(path: Path, arch: str) -> Symbols:
    fmt = sniff(path)
    if fmt is None:
        raise ValueError(f"{path}: not a binary")
    return BY_NAME[fmt.name].symbols(path, arch)


def missing_symbols(
    user: Symbols, requests: set[str], duplicate: Symbols, primary: Symbols
) -> tuple[int, list[str]]:
    """What `user` imports from the duplicate (reached by `requests`) that the primary lacks.

    An import belongs to the duplicate when its binding names one of the requests (GNU version
    requirement, Mach-O ordinal, PE import table), or when it names no library and the duplicate
    exports it (unversioned ELF, Mach-O flat lookup). Returns (imports checked, missing).
    """
    checked, missing = 0, []
    for imp in user.imports:
        bound = imp.library in requests if imp.library is not None else duplicate.provides(imp)
        if not bound:
            continue
        checked += 1
        if not primary.provides(imp) and not imp.weak:
            missing.append(f"{imp.name}@{imp.version}" if imp.version else imp.name)
    for file, version in sorted(user.needs_versions):
        if file in requests and version not in primary.defines_versions:
            missing.append(f"version {version}")
    return checked, missing


class _Symbols:
    """Symbol tables read once per plan, not once per user of a library."""

    def __init__(self, read: SymbolReader) -> None:
        self.read = read
        self.cache: dict[tuple[Path, str], Symbols] = {}

    def __call__(self, path: Path, arch: str) -> Symbols:
        if (path, arch) not in self.cache:
            self.cache[(path, arch)] = self.read(path, arch)
        return self.cache[(path, arch)]


def _symbols_missing(
    report: AuditReport, dup: OpenMPLibrary, primary_path: Path, symbols: _Symbols
) -> tuple[int, list[str]]:
    """What each user of `dup` needs from it that the primary lacks, and how many were checked."""
    root = Path(report.root)
    checked, missing = 0, []
    per_user = [ld for ld in report.loads if ld.runtime == dup.path]
    for user in report.users(dup.path):
        loads = [ld for ld in per_user if ld.binary == user]
        arch = loads[0].arch
        n, miss = missing_symbols(
            symbols(root / user, arch),
            {ld.request for ld in loads},
            symbols(root / dup.path, arch),
            symbols(primary_path, arch),
        )
        checked += n
        missing += [f"{m} (needed by {user})" for m in miss]
    return checked, missing


def _plan_one(report: AuditReport, dup: OpenMPLibrary, symbols: _Symbols) -> Action | Refusal:
    """A duplicate becomes a symlink to the primary, or is refused with the reason."""
    assert report.primary is not None
    root = Path(report.root)
    primary_path, dup_path = root / report.primary, root / dup.path
    if Path(dup.path).is_absolute():
        return Refusal(path=dup.path, reason="outside the audited tree")
    fmt = sniff(dup_path)
    if fmt is None or fmt.name == "pe":
        return Refusal(path=dup.path, reason=WINDOWS_REFUSAL)
    checked, missing = _symbols_missing(report, dup, primary_path, symbols)
    if missing:
        shown = "; ".join(sorted(set(missing))[:5])
        more = f" and {len(set(missing)) - 5} more" if len(set(missing)) > 5 else ""
        return Refusal(path=dup.path, reason=f"the primary {report.primary} lacks {shown}{more}")
    return Action(
        kind="symlink",
        path=dup.path,
        link=os.path.relpath(primary_path, dup_path.parent),
        primary=report.primary,
        users=report.users(dup.path),
        symbols_checked=checked,
        sha256_before=dup.sha256,
        size_before=dup.size,
    )


def plan_fix(report: AuditReport, *, read: SymbolReader = read_symbols) -> Plan:
    dups = report.duplicates
    if not dups:
        return Plan(
            root=report.root, primary=report.primary, actions=(), refusals=(), notes=("one OpenMP runtime",)
        )
    if report.primary is None:
        reason = f"no primary: {report.primary_reason}"
        return Plan(
            root=report.root,
            primary=None,
            actions=(),
            refusals=tuple(Refusal(path=r.path, reason=reason) for r in dups),
        )
    notes: list[str] = []
    primary_fmt = sniff(Path(report.root) / report.primary)
    if primary_fmt is not None and primary_fmt.name == "pe":
        notes.append(WINDOWS_NOTE)
    if primary_fmt is not None and primary_fmt.name == "macho":
        notes.append(MACHO_NOTE)
    symbols = _Symbols(read)
    decided = [_plan_one(report, dup, symbols) for dup in dups]
    refusals = [d for d in decided if isinstance(d, Refusal)]
    if any(r.reason == WINDOWS_REFUSAL for r in refusals) and WINDOWS_NOTE not in notes:
        notes.append(WINDOWS_NOTE)
    return Plan(
        root=report.root,
        primary=report.primary,
        actions=tuple(d for d in decided if isinstance(d, Action)),
        refusals=tuple(refusals),
        notes=tuple(notes),
    )


def describe(plan: Plan) -> list[str]:
    """The plan as lines for a person."""
    lines = [f"primary: {plan.primary or '(none)'}"]
    for a in plan.actions:
        lines.append(f"replace {a.path}")
        lines.append(
            f"   by symlink -> {a.link}  ({len(a.users)} users, {a.symbols_checked} imports checked)"
        )
    for r in plan.refusals:
        lines.append(f"refuse  {r.path}: {r.reason}")
    if not plan.actions and not plan.refusals:
        lines.append("nothing to change")
    lines += [f"note: {n}" for n in plan.notes]
    return lines

"""freeze.excludes: what a chain of profiles leaves out, and what a workload's imports keep in.

A profile adds excludes to its parent's and takes one back with "!name" (the exclude `name` and
those of its submodules). Each exclude remembers the profile that set it, so that a conflict
names the file to change. A module the workload imports is never excluded: an exclude inherited
from a parent is lifted (the parent guessed for every program; the run proves this one needs it),
and an exclude the profile sets itself is refused in one line (the profile says two things).
Pure functions: the trace of imports comes from whoever ran the workload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import ProfileError

TAKE_BACK = "!"


def covers(exclude: str, module: str) -> bool:
    """Whether excluding `exclude` leaves `module` out (the module itself or one of its submodules)."""
    return module == exclude or module.startswith(exclude + ".")


def apply_layer(current: Mapping[str, str], items: Iterable[str], origin: str) -> dict[str, str]:
    """One profile's freeze.excludes over its parent's: exclude -> the profile that set it (pure).

    "!name" drops `name` and every exclude under it; a plain name is added (its first setter stays
    its origin). A take-back of nothing the parents exclude is left to the caller to judge."""
    out = dict(current)
    for item in items:
        if item.startswith(TAKE_BACK):
            name = item[len(TAKE_BACK) :]
            out = {e: o for e, o in out.items() if not covers(name, e)}
        else:
            out.setdefault(item, origin)
    return out


def unmatched_take_backs(current: Mapping[str, str], items: Iterable[str]) -> list[str]:
    """The "!name" items that take back nothing `current` excludes (a typo, or a stale take-back)."""
    return [
        i
        for i in items
        if i.startswith(TAKE_BACK) and not any(covers(i[len(TAKE_BACK) :], e) for e in current)
    ]


@dataclass(frozen=True, kw_only=True)
class ExcludeClash:
    """A module the workload imports that an exclude would leave out."""

    module: str
    exclude: str
    origin: str  # the profile that set the exclude

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "exclude": self.exclude, "origin": self.origin}


@dataclass(frozen=True, kw_only=True)
class ExcludeJudgement:
    excludes: tuple[str, ...]  # what PyInstaller is told to leave out
    kept: tuple[ExcludeClash, ...]  # inherited excludes lifted: the workload imports under them
    refused: tuple[ExcludeClash, ...]  # the profile's own excludes on a module the workload imports

    def to_json(self) -> dict[str, Any]:
        return {
            "excludes": list(self.excludes),
            "kept": [c.to_json() for c in self.kept],
            "refused": [c.to_json() for c in self.refused],
        }


def judge_excludes(
    excludes_with_origin: Mapping[str, str], imported_modules: Iterable[str], *, profile: str
) -> ExcludeJudgement:
    """Excludes (exclude -> profile that set it, in order) against the modules a run of the workload
    imported; `profile` is the profile being built: its own excludes are refused, inherited ones kept."""
    imported = sorted(set(imported_modules))
    excludes: list[str] = []
    kept: list[ExcludeClash] = []
    refused: list[ExcludeClash] = []
    for exclude, origin in excludes_with_origin.items():
        module = next((m for m in imported if covers(exclude, m)), None)
        if module is None:
            excludes.append(exclude)
            continue
        clash = ExcludeClash(module=module, exclude=exclude, origin=origin)
        (refused if origin == profile else kept).append(clash)
    return ExcludeJudgement(excludes=tuple(excludes), kept=tuple(kept), refused=tuple(refused))


def refusal(judgement: ExcludeJudgement, profile_path: Path) -> ProfileError | None:
    """The one-line error for the first refused exclude, or None."""
    if not judgement.refused:
        return None
    c = judgement.refused[0]
    more = f" (and {len(judgement.refused) - 1} more)" if len(judgement.refused) > 1 else ""
    return ProfileError(
        f"{profile_path}: key 'freeze.excludes': the workload imports {c.module}, which the exclude "
        f"{c.exclude!r} set by profile {c.origin} leaves out{more}",
        hint=f"remove {c.exclude!r} from freeze.excludes in {c.origin}.toml; the program needs it",
    )

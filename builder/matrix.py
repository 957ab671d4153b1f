"""`builder matrix`: the CI matrix, each profile with the runner that builds it natively.

install, freeze and bench run on the target itself, so a release pipeline builds
every profile on its target's own runner (builder/targets.py `Target.runner`).
The release workflow reads this as `strategy.matrix.include`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from builder.profile import Profile
from builder.schemas import tagged


@dataclass(frozen=True, kw_only=True)
class MatrixEntry:
    """What a CI job needs to build one profile on its target's runner."""

    profile: str
    target: str
    platform: str
    runner: str
    python: str

    def to_json(self) -> dict[str, str]:
        return {"profile": self.profile, "target": self.target, "platform": self.platform,
                "runner": self.runner, "python": self.python}  # fmt: skip


def release_matrix(profiles: Iterable[Profile]) -> list[MatrixEntry]:
    """One entry per profile, sorted by name."""
    return [
        MatrixEntry(
            profile=p.name, target=p.target.name, platform=p.target.uv_platform, runner=p.target.runner,
            python=p.python,
        )
        for p in sorted(profiles, key=lambda p: p.name)
    ]  # fmt: skip


def matrix_document(rows: list[MatrixEntry]) -> dict[str, object]:
    """The `builder matrix --json` document: the rows as `include`, what a workflow's
    `strategy.matrix.include` takes (`fromJSON(...).include`) (pure)."""
    return tagged("matrix", {"include": [r.to_json() for r in rows]})

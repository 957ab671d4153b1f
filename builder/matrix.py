"""`builder matrix`: the CI matrix, each profile with the runner that builds it natively.

install, freeze and bench run on the target itself, so a release pipeline builds
every profile on its target's own runner (builder/targets.py `Target.runner`).
The release workflow reads this as `strategy.matrix.include`.
"""

from __future__ import annotations

from collections.abc import Iterable

from builder.profile import Profile


def release_matrix(profiles: Iterable[Profile]) -> list[dict[str, str]]:
    """One entry per profile, sorted by name: what a CI job needs to build it on its runner."""
    return [
        {
            "profile": p.name,
            "target": p.target.name,
            "platform": p.target.uv_platform,
            "runner": p.target.runner,
            "python": p.python,
        }
        for p in sorted(profiles, key=lambda p: p.name)
    ]

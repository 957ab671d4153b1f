"""uv's resolver report, read: which package has no wheel for the target, and where wheels exist.

Pure functions over the text uv prints on stderr; tests/fixtures/uv holds real reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# "torch>=2.5.0 has no wheels with a matching platform tag (e.g., `macosx_13_0_x86_64`)",
# "triton==3.0.0 has no wheels with a matching Python ABI tag", "llvmlite<=0.36.0 has no usable wheels";
# a requirement behind a marker carries it in braces: "diffq{sys_platform != 'win32'}==0.2.1 has no ..."
_NO_WHEEL = re.compile(
    r"(?<![\w.-])(?P<package>[A-Za-z0-9][A-Za-z0-9._-]*?)(?:\{[^{}]*\})?(?P<spec>(?:==|===|>=|<=|!=|~=|<|>)[^\s,]+(?:,[^\s,]+)*)?"
    r" has no (?:usable wheels|wheels with a matching (?P<kind>Python ABI|platform|Python implementation) tag"
    r"(?: \(e\.g\., `(?P<tag>[^`]+)`\))?)"
)
# uv's hints: "Wheels are available for `torch` (v2.2.0) on the following platforms: `a`, `b`"
# and "...but we only found wheels for `triton` (v1.1.1) with the following Python ABI tags: `a`, `b`"
_AVAILABLE = re.compile(
    r"[Ww]heels (?:are available )?for `(?P<package>[^`]+)` \(v(?P<version>[^)]+)\) (?:on|with) the following "
    r"(?P<kind>platforms|Python ABI tags|Python implementation tags): (?P<tags>(?:`[^`]+`(?:, )?)+)"
)


@dataclass(frozen=True, kw_only=True)
class MissingWheel:
    """A package the target has no wheel of, as uv reported it."""

    package: str
    spec: str  # the versions uv tried: "3.0.0", ">=2.5.0", or "" for every version
    kind: str  # "platform", "Python ABI", "Python implementation", or "any" (source distributions only)
    tag: str | None  # the target's tag that no wheel carries (e.g. win_amd64, cp311)
    available: (
        str | None
    )  # where wheels of it exist, from uv's hint: "triton 3.9.0 on manylinux_2_28_x86_64, ..."

    @property
    def versions(self) -> str:
        exact = self.spec.startswith("==") and not self.spec.startswith("===") and "," not in self.spec
        return self.spec[2:] if exact else self.spec or "(any version)"

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "versions": self.versions,
            "kind": self.kind,
            "tag": self.tag,
            "available": self.available,
        }


def missing_wheel(stderr: str) -> MissingWheel | None:
    """The package uv found no wheel of (the report's last such clause: the one that closed the
    resolution), or None when the report is about something else (pure)."""
    text = " ".join(stderr.split())
    found = list(_NO_WHEEL.finditer(text))
    if not found:
        return None
    m = found[-1]
    kind = m.group("kind") or "any"
    return MissingWheel(
        package=m.group("package"),
        spec=m.group("spec") or "",
        kind=kind,
        tag=m.group("tag"),
        available=_available(text, m.group("package"), kind),
    )


def _available(text: str, package: str, kind: str) -> str | None:
    """uv's hint of where wheels of `package` exist, for the kind of tag that was missing."""
    want = {"platform": "platforms", "Python ABI": "Python ABI tags"}.get(kind, f"{kind} tags")
    for h in _AVAILABLE.finditer(text):
        if h.group("package") == package and h.group("kind") == want:
            tags = ", ".join(re.findall(r"`([^`]+)`", h.group("tags")))
            return f"{package} {h.group('version')} on {tags}"
    return None

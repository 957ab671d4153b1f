"""Paths in a report meant for sharing, relative to the project: a report must not carry the
absolute path of the checkout it was made in (one machine's folders, a user's name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def project_relative(value: Any, root: Path) -> Any:
    """`value` (JSON-like: dicts, lists, strings) with every path under `root` made relative to it,
    also inside longer strings (a command line, an error message); the root itself becomes ".".

    >>> project_relative({"path": "/w/p/b/v", "cmd": ["/w/p/d/a/a", "-m", "/w/other"]}, Path("/w/p"))
    {'path': 'b/v', 'cmd': ['d/a/a', '-m', '/w/other']}
    >>> project_relative(["/w/p", "/w/pq/x", "error: /w/p/x.toml: bad"], Path("/w/p"))
    ['.', '/w/pq/x', 'error: x.toml: bad']
    """
    prefix = root.as_posix().rstrip("/") + "/"
    if isinstance(value, str):
        return "." if value == prefix[:-1] else value.replace(prefix, "")
    if isinstance(value, dict):
        return {key: project_relative(item, root) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [project_relative(item, root) for item in value]
    return value

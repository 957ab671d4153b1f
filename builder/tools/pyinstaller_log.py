"""PyInstaller's log, read as it streams: which phase the freeze is in, as short progress lines.

PyInstaller (run at --log-level INFO) says when it starts each phase of a build; `phase_of`
turns those lines into what a user reads ("analysing imports", "copying files"), and
`FreezeProgress` counts the package hooks PyInstaller runs between them. Both are pure: the freeze
feeds them lines and prints what they return, no more often than its log allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (pattern over the message, what the user reads); first match wins. Messages from PyInstaller 6.
PHASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), label)
    for p, label in (
        (r"^Analyzing modules for base_library\.zip", "analysing the standard library"),
        (r"^Analyzing (?!hidden import|run-time hooks|modules for)(.+\.pyw?)$", "analysing imports of {0}"),
        (r"^Processing module hooks \(post-graph stage\)", "running package hooks"),
        (r"^Analyzing run-time hooks", "analysing run-time hooks"),
        (r"^Looking for dynamic libraries", "finding shared libraries"),
        (
            r"^Building PYZ \(ZlibArchive\) .*(?<!completed successfully\.)$",
            "writing the module archive (PYZ)",
        ),
        (r"^Building EXE from .*(?<!completed successfully\.)$", "writing the executable"),
        (r"^Building COLLECT (?!because ).*(?<!completed successfully\.)$", "copying files into the folder"),
        (r"^Build complete!", "PyInstaller done"),
    )
)
# "123 INFO: message" (PyInstaller's own format); the number is milliseconds since its start.
LINE = re.compile(r"^\s*\d+\s+(?P<level>[A-Z]+):\s(?P<message>.*)$")
HOOK = re.compile(
    r"^Processing (?:standard |pre-safe-import-module |pre-find-module-path )?(?:module )?hook '?hook-(?P<name>[^'.]+(?:\.[^'.]+)*)\.py"
)


def message_of(line: str) -> tuple[str, str] | None:
    """(level, message) of one PyInstaller log line; None for what is not a log line (pure)."""
    match = LINE.match(line)
    return (match["level"], match["message"].strip()) if match else None


def phase_of(line: str) -> str | None:
    """What a user reads when PyInstaller starts a new phase with this line, else None (pure)."""
    parsed = message_of(line)
    if parsed is None or parsed[0] != "INFO":
        return None
    for pattern, label in PHASES:
        if match := pattern.match(parsed[1]):
            return label.format(*(g.rsplit("/", 1)[-1] for g in match.groups()))
    return None


@dataclass
class FreezeProgress:
    """The freeze so far, from the lines seen: its phase, and the hooks run so far."""

    phase: str = "starting PyInstaller"
    hooks: int = 0
    last_hook: str = ""
    warnings: int = 0

    def feed(self, line: str) -> str | None:
        """Take one line; return the new phase's label when this line starts one."""
        parsed = message_of(line)
        if parsed is None:
            return None
        level, message = parsed
        if level == "WARNING":
            self.warnings += 1
        if match := HOOK.match(message):
            self.hooks += 1
            self.last_hook = match["name"]
        phase = phase_of(line)
        if phase is not None:
            self.phase = phase
        return phase

    def summary(self) -> str:
        """The phase, with the hooks run so far while the imports are being analysed."""
        analysing = self.phase.startswith(("analysing", "running package hooks"))
        if not analysing or not self.hooks:
            return self.phase
        return f"{self.phase} ({self.hooks} hooks run; last: {self.last_hook})"

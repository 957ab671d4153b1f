"""A profile string is written into locks, manifests, SBOMs and PyInstaller specs, one line each.

A newline there once became a requirement line of a lock's body, seen only by a later `lock
--check`. So every string of a profile (values, list items, table names) is refused at load when
it holds a control character or a line separator, with the key named. Each case is a child
profile of a shipped one, so only the hostile key differs from a profile that loads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_one_line_error

from builder.errors import ProfileError
from builder.profile import load_profile

from .test_builder_files import cli

BASE = "minimal-linux-x86_64"
# TOML escapes: the file stays one line per key, the loaded string holds the character
CHARS = {"newline": "\\n", "carriage return": "\\r", "NUL": "\\u0000", "escape": "\\u001b",
         "DEL": "\\u007f", "tab": "\\t", "line separator": "\\u2028", "next line": "\\u0085"}  # fmt: skip
# (TOML lines of the child profile, with {c} where the character goes; the key the error names)
KEYS = {
    "description": ('description = "evil{c}x"', "description"),
    "excluded reason": (
        '[packages.excluded]\ntorchaudio = "no wheel{c}evil==6.6.6"',
        "packages.excluded.torchaudio",
    ),
    "excluded name": ('[packages.excluded]\n"evil{c}pkg" = "why"', "packages.excluded (a name in it)"),
    "requirement": ('[packages]\nrequirements = ["tqdm", "numpy{c}"]', "packages.requirements[1]"),
    "torch index": ('[indexes]\ntorch-index = "https://example.org/{c}simple"', "indexes.torch-index"),
    "runtime env": ('[runtime.env]\nFOO = "a{c}b"', "runtime.env.FOO"),
    "freeze excludes": ('[freeze]\nexcludes = ["tkinter{c}"]', "freeze.excludes[0]"),
    "program collect": ('[program]\ncollect = ["pkg{c}x"]', "program.collect[0]"),
    "bench command": ('[bench]\ncommand = "{{program}} {{input}}{c} {{output}}"', "bench.command"),
}


def _child(profiles: Path, lines: str, char: str) -> None:
    """profiles/evil.toml: a child of BASE with `lines` (top-level keys before any table)."""
    body = lines.format(c=char)
    if body.startswith("description"):
        text = f'{body}\nextends = "{BASE}"\n'
    else:
        text = f'description = "a child"\nextends = "{BASE}"\n{body}\n'
    (profiles / "evil.toml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("key", sorted(KEYS))
def test_a_newline_in_any_profile_string_is_refused_with_the_key_named(profiles: Path, key: str) -> None:
    lines, named = KEYS[key]
    _child(profiles, lines, "")
    load_profile("evil", profiles)  # without the character the child loads
    _child(profiles, lines, CHARS["newline"])
    with pytest.raises(ProfileError) as info:
        load_profile("evil", profiles)
    line = info.value.one_line()
    assert f"key '{named}'" in line and "U+000A" in line and "evil.toml" in line, line


@pytest.mark.parametrize("char", sorted(CHARS))
def test_every_control_character_in_a_lock_comment_is_refused(profiles: Path, char: str) -> None:
    _child(profiles, KEYS["excluded reason"][0], CHARS[char])
    with pytest.raises(ProfileError, match=r"key 'packages\.excluded\.torchaudio' holds a control character"):
        load_profile("evil", profiles)


def test_lock_check_names_the_key_in_one_line_exit_2(
    profiles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _child(profiles, KEYS["excluded reason"][0], CHARS["newline"])
    proc = cli("--root", profiles.parent, "lock", "--check", "--profile", "evil", capsys=capsys)
    assert_one_line_error(proc, ProfileError.exit_code, "evil.toml", "packages.excluded.torchaudio", "U+000A")


def test_printable_unicode_is_still_welcome(profiles: Path) -> None:
    _child(profiles, 'description = "Mädchen — naïve façade, 東京 ✓"', "")
    assert load_profile("evil", profiles).description.startswith("Mädchen")

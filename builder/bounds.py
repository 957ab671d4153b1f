"""Bounds on the files builder parses, checked before parsing: size, nesting, dotted-key parts.

Python's parsers are exact, not defensive: tomllib takes time quadratic in the parts of one
dotted key (an 80 KB key of `a.a.a...` took 73 s of CPU), and both tomllib and json recurse
once per nesting level (RecursionError). The scanners here read the text once, linearly, and
refuse a file over a bound with one line naming it, the line and the bound.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from builder.errors import BuilderError, InputError, LimitError
from builder.oserror import os_error

KB = 1024
MAX_PROFILE_BYTES = 64 * KB  # builder's own profiles are under 2 KB
MAX_LOCK_BYTES = 16 * KB * KB  # the largest lock here is ~200 KB
MAX_MANIFEST_BYTES = 64 * KB * KB  # one row per file: ~40k files in a torch dist is ~6 MB
MAX_RECORD_BYTES = 64 * KB * KB  # torch's RECORD is ~2 MB
MAX_DEPTH = 32  # TOML arrays/inline tables, JSON arrays/objects; ours nest 3 deep
MAX_KEY_PARTS = 16  # `a.b.c = 1`: ours have 2 at most


def read_bounded(path: Path, what: str, limit: int, *, wrong_kind: type[BuilderError] = InputError) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is one BuilderError.

    A FIFO, a device or a folder is refused from its stat (as `wrong_kind`), before any read
    that could block; a broken link, a loop and a permission are named by `os_error`.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO or a device"
            raise wrong_kind(f"{path}: not a regular file ({kind}), where a {what} belongs")
        if st.st_size > limit:
            raise _too_big(path, what, limit)
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise os_error(exc, path, doing=f"read the {what}") from None
    if len(data) > limit:  # it grew after the stat
        raise _too_big(path, what, limit)
    return data


def _too_big(path: Path, what: str, limit: int) -> LimitError:
    return LimitError(f"{path}: over {limit // KB} KB, larger than any {what} builder reads")


def _skip_string(text: str, i: int) -> int:
    """The index after the TOML string starting at `i` (basic or literal, one- or multi-line)."""
    q = text[i]
    if text.startswith(q * 3, i):
        end = text.find(q * 3, i + 3)
        while q == '"' and end > 0 and _escaped(text, end):
            end = text.find(q * 3, end + 1)
        return len(text) if end < 0 else end + 3
    j = i + 1
    while j < len(text) and text[j] != q and text[j] != "\n":
        j += 2 if text[j] == "\\" and q == '"' else 1
    return j + 1


def _escaped(text: str, j: int) -> bool:
    n = 0
    while j - n - 1 >= 0 and text[j - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def toml_shape(text: str) -> tuple[int, int, int]:
    """(deepest nesting, most parts in one key, the offset of the worst), outside strings and
    comments (pure). A key is what stands at a line's start, in a table header's brackets, or
    after `{` or `,` in an inline table, up to its `=`; its parts are its dots plus one."""
    stack: list[str] = []
    depth = parts = worst = 0
    in_key, dots, header = True, 0, False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            i = _skip_string(text, i)
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == "\n" and not stack:
            in_key, dots, header = True, 0, False
        elif c == "." and in_key:
            dots += 1
        elif c == "=":
            in_key = False
        elif c in "[{":
            if c == "[" and (header or (in_key and not stack)):
                header = True  # `[table]` / `[[array]]` at a line's start: its inside is a key
            else:
                in_key, dots = c == "{", 0
            stack.append(c)
        elif c in "]}":
            if stack:
                stack.pop()
            in_key = False  # a key never follows a closing bracket; `,` or a new line starts one
            header = header and bool(stack)
        elif c == "," and stack and stack[-1] == "{":
            in_key, dots = True, 0
        if len(stack) > depth or dots + 1 > parts:
            depth, parts, worst = max(depth, len(stack)), max(parts, dots + 1), i
        i += 1
    return depth, parts, worst


_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> tuple[int, int]:
    """(deepest nesting of arrays and objects, the index of the bracket that reaches it), outside
    strings (pure). Regular expressions drop the strings and all but the brackets first, so a
    manifest of megabytes costs milliseconds."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    level = depth = worst = 0
    for i, c in enumerate(brackets):
        level += 1 if c in "[{" else -1
        if level > depth:
            depth, worst = level, i
    return depth, worst


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def check_toml(text: str, path: Path) -> None:
    """LimitError when the TOML nests deeper than MAX_DEPTH or a key has more than MAX_KEY_PARTS parts."""
    depth, parts, worst = toml_shape(text)
    if depth > MAX_DEPTH:
        raise LimitError(f"{path}: line {_line(text, worst)}: nested more than {MAX_DEPTH} levels deep")
    if parts > MAX_KEY_PARTS:
        raise LimitError(
            f"{path}: line {_line(text, worst)}: a dotted key of more than {MAX_KEY_PARTS} parts",
            hint="profile keys are `section.key`",
        )


def check_json(text: str, path: Path) -> None:
    """LimitError when the JSON nests deeper than MAX_DEPTH."""
    depth, _ = json_depth(text)
    if depth > MAX_DEPTH:
        raise LimitError(f"{path}: JSON nested more than {MAX_DEPTH} levels deep")


def over_digit_limit(exc: ValueError) -> str | None:
    """Python's refusal of an integer of too many digits, in words without its advice to raise
    the limit; None for any other ValueError (pure)."""
    text = str(exc)
    return text.split("; use sys.")[0] if "limit" in text and "digits" in text else None

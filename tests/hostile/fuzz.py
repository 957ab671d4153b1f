"""Seeded hostile bytes for every file reader: random bytes, truncations, NUL bytes, wrong shapes.

No hypothesis (not a test dependency): `random.Random(seed)` makes every case reproducible
from its index, and a failing case prints its seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

# JSON documents of the wrong shape for a reader that wants an object with a known layout
WRONG_JSON = [
    "[]",
    "null",
    "42",
    '"text"',
    "{}",
    '{"files": 3}',
    '{"files": [1, 2]}',
    '{"files": [{"path": 7}]}',
    '{"files": [{"path": "../../etc/passwd", "size": 1, "sha256": "sha256:' + "0" * 64 + '"}]}',
    '{"files": [{"path": "a\\u0000b", "link": "x"}]}',
    '{"threads": {"a": 1}}',
    '{"threads": NaN}',
    '{"env": []}',
    '{"env": {"A=B": "1"}}',
    '{"env": {"A": "x\\u0000y"}}',
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
]


def mutations(valid: bytes, seed: int, cases: int) -> Iterator[tuple[str, bytes]]:
    """(label, bytes) cases derived from a valid file: truncations, flipped bytes, NUL bytes,
    random bytes, invalid UTF-8, and the wrong JSON shapes."""
    rng = random.Random(seed)
    for shape in WRONG_JSON:
        yield f"json {shape[:30]}", shape.encode()
    yield "empty", b""
    yield "only NUL", b"\0" * 64
    yield "BOM then junk", b"\xef\xbb\xbf\xff\xfe"
    for n in range(cases):
        kind = n % 5
        if kind == 0 and valid:
            cut = rng.randrange(len(valid))
            yield f"truncated at {cut} (seed {seed}, case {n})", valid[:cut]
        elif kind == 1 and valid:
            data = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield f"flipped bytes (seed {seed}, case {n})", bytes(data)
        elif kind == 2 and valid:
            at = rng.randrange(len(valid) + 1)
            yield f"NUL at {at} (seed {seed}, case {n})", valid[:at] + b"\0" + valid[at:]
        elif kind == 3:
            yield f"random bytes (seed {seed}, case {n})", rng.randbytes(rng.randint(1, 2000))
        else:
            # random JSON values: the right syntax, the wrong shape
            value: object = rng.choice([[], {}, 0, -1, 1e308, "", None, True, {"x": [1]}, ["files"]])
            yield f"json {json.dumps(value)} (seed {seed}, case {n})", json.dumps(value).encode()

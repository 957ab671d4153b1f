"""LIEF, imported by the functions that read a binary, not when builder starts.

Importing LIEF costs 0.5-1.2 s (its native module); `builder --help`, `lock` or `compare` read no
binary and should not pay for it. Readers do `from builder.openmp.formats.lieflib import lief`
inside the function that parses, and name LIEF's types for mypy under TYPE_CHECKING.
"""

from __future__ import annotations

import lief

__all__ = ["lief"]

lief.logging.disable()  # LIEF warns on stderr about harmless oddities of real wheels.

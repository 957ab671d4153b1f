"""One error hierarchy for the runtime; each class has its own exit code.

Library code raises these; only `main()` (one shot) and the worker loop catch
them. The worker answers with `code` (a stable string) instead of exiting.
"""

from __future__ import annotations

import re


class StemsError(Exception):
    exit_code = 1
    code = "internal"


class UsageError(StemsError):
    """Bad flags or job parameters."""

    exit_code = 2
    code = "bad_request"


class RuntimeConfigError(UsageError):
    """The runtime config (runtime.json, STEMS_RUNTIME_CONFIG, STEMS_* variables) or a runtime flag
    (--threads...) is invalid. Same exit code as other usage errors, as the contract says."""

    code = "bad_runtime_config"


class InputError(StemsError):
    """An input file is missing, unreadable or not audio."""

    exit_code = 3
    code = "bad_input"


class ModelConfigError(StemsError):
    """A model config (preset or YAML) is invalid."""

    exit_code = 4
    code = "bad_model_config"


class CheckpointError(StemsError):
    """A checkpoint cannot be loaded safely or does not match the model."""

    exit_code = 5
    code = "bad_checkpoint"


class OutputError(StemsError):
    """An output cannot be written (unwritable folder, would overwrite the input...)."""

    exit_code = 6
    code = "bad_output"


class Cancelled(StemsError):
    """A job was cancelled (worker) or interrupted (Ctrl-C)."""

    exit_code = 130
    code = "cancelled"


class OutOfMemory(StemsError):
    """An allocation failed (Python's MemoryError, torch's "can't allocate memory")."""

    exit_code = 7
    code = "out_of_memory"


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, as KeyboardInterrupt is, so that no `except
    Exception` on the way to the CLI swallows it; its exit code is the shell's 128 + signal number."""

    code = Cancelled.code

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"interrupted by {name}")
        self.signum = signum
        self.name = name
        self.exit_code = 128 + signum


# the phrases of an allocation failure: torch's CPU allocator, CUDA's and MPS's
_ALLOCATION_FAILURES = ("can't allocate memory", "out of memory", "cannot allocate memory")


def as_stems_error(exc: BaseException) -> StemsError | None:
    """The StemsError an exception from a library stands for (an allocation failure is
    OutOfMemory), or None for a bug."""
    if isinstance(exc, StemsError):
        return exc
    text = str(exc).strip()
    if not isinstance(exc, MemoryError) and not (
        isinstance(exc, RuntimeError) and any(p in text.lower() for p in _ALLOCATION_FAILURES)
    ):
        return None
    asked = re.search(r"allocate (\d+) bytes", text)
    what = (
        f"an allocation of {int(asked.group(1)) / 2**30:.1f} GiB failed" if asked else "an allocation failed"
    )
    return OutOfMemory(f"out of memory: {what}; try a smaller batch size, or another model or machine")

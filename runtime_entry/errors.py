"""One error hierarchy for the runtime; each class has its own exit code.

Library code raises these; only `main()` (one shot) and the worker loop catch
them. The worker answers with `code` (a stable string) instead of exiting.
"""

from __future__ import annotations


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

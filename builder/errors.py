"""One error hierarchy for builder. Library code raises; only the CLI catches.

Each class has its own exit code so pipelines can tell failures apart without
parsing text. The message is one line: what, where, and a suggestion.
"""

from __future__ import annotations


class BuilderError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({' '.join(self.hint.split())})"
        return text


class ProfileError(BuilderError):
    """A profile file is unreadable or invalid (TOML, keys, types, extends, target)."""

    exit_code = 2


class ResolutionError(BuilderError):
    """uv found no set of versions that satisfies the profile."""

    exit_code = 3


class NoWheelError(ResolutionError):
    """A package has no wheel for the target and source builds are forbidden."""

    exit_code = 4


class PythonNotFoundError(BuilderError):
    """The target's Python interpreter is not on this machine."""

    exit_code = 5


class ForeignTargetError(BuilderError):
    """A stage that must run on the target was asked for on another host."""

    exit_code = 6


class ToolError(BuilderError):
    """An external tool (uv, PyInstaller, the frozen program) failed."""

    exit_code = 7


class CheckError(BuilderError):
    """A built runtime does not behave as its profile says."""

    exit_code = 8


class StaleLockError(BuilderError):
    """A lock file is missing or was made from a different profile."""

    exit_code = 9


class ModifiedLockError(StaleLockError):
    """A lock's body no longer matches the hash in its header: it was edited by hand or damaged."""

    exit_code = 12


class BusyError(BuilderError):
    """Another build of the same profile holds its build mutex (and --no-wait was given)."""

    exit_code = 13


class InputError(BuilderError):
    """A path given on the command line is not what the command expects."""

    exit_code = 10


class BudgetError(BuilderError):
    """A measured value is over the profile's budget."""

    exit_code = 11


class NetworkError(BuilderError):
    """An index could not be reached: a bad index URL, DNS, a refused connection, a timeout, TLS."""

    exit_code = 20


class FileSystemError(BuilderError):
    """The operating system refused a read or write (an I/O error, say); the subclasses are the common cases."""

    exit_code = 21


class AccessError(FileSystemError):
    """Permission denied on a path (EACCES, EPERM)."""

    exit_code = 22


class DiskError(FileSystemError):
    """A write failed for want of room: the disk or quota is full, the file system is read-only, a file too big."""

    exit_code = 23


class LimitError(InputError):
    """A file is over builder's bounds (size, nesting, dotted-key parts) or Python's (recursion, memory,
    integer digits): refused before or instead of parsing it."""

    exit_code = 24

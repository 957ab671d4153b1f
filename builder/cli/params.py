"""click's Path, with the OS's own reason when a path cannot be used.

click says "does not exist" for a symlink loop and "is not readable" for a permission, both as
usage errors (exit 10); here a loop, a broken link and a permission are named as such, with
their own exit codes (builder/oserror.py).
"""

from __future__ import annotations

import errno
import os
from typing import Any

import click

from builder.errors import BuilderError
from builder.oserror import os_error

# What makes a path unusable whatever the command does with it; the rest (a missing output
# folder, say) is the command's to handle or click's to report.
_ALWAYS = {errno.ELOOP, errno.EACCES, errno.EPERM}


class CheckedPath(click.Path):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (str, os.PathLike)) and os.fspath(value) != "-":
            try:
                _check(os.fspath(value), must_exist=self.exists, readable=self.readable)
            except BuilderError as err:
                if isinstance(param, click.Option):  # name the option: `--out PATH: ...`
                    err.message = f"{param.opts[0]} {err.message}"
                raise
        return super().convert(value, param, ctx)


def _check(path: str, *, must_exist: bool, readable: bool) -> None:
    try:
        os.stat(path)
    except OSError as exc:
        broken_link = exc.errno == errno.ENOENT and os.path.islink(path)
        if exc.errno in _ALWAYS or (must_exist and (broken_link or exc.errno != errno.ENOENT)):
            raise os_error(exc, path) from None
        return
    if readable and not os.access(path, os.R_OK):
        raise os_error(PermissionError(errno.EACCES, os.strerror(errno.EACCES), path))

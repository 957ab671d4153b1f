"""The `builder` command line. The only place that catches BuilderError."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import ClassVar, NoReturn

import click

from builder.bounds import over_digit_limit
from builder.cli.params import CheckedPath
from builder.errors import BuilderError, InputError, LimitError
from builder.oserror import os_error
from builder.paths import Project, find_project

# click's own usage errors get sysexits' EX_USAGE so they never collide with ours (2..).
EXIT_USAGE = 64


class LazyGroup(click.Group):
    """One module per command in builder/cli/, imported only when the command is named.

    Some pull in heavy libraries (LIEF for openmp, CycloneDX for sbom: ~0.6 s):
    `builder profiles` or `builder lock --check` should not pay for them.
    """

    COMMANDS: ClassVar[tuple[str, ...]] = (
        "init", "profiles", "lock", "build", "openmp", "inspect", "verify", "sbom", "diff",
        "matrix", "clean", "bench", "compare", "bisect", "tune", "doctor",
    )  # fmt: skip

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.COMMANDS:
            command: click.Command = getattr(importlib.import_module(f"builder.cli.{name}"), name)
            return command
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=CheckedPath(file_okay=False, path_type=Path),
    help="Project folder with profiles/ and locks/ (default: found from the current folder).",
)
@click.version_option(package_name="runtime-builder")
@click.pass_context
def cli(ctx: click.Context, root: Path | None) -> None:
    """Build, audit, benchmark and package frozen PyTorch runtimes."""
    ctx.obj = Project(root=root.resolve()) if root else find_project()


def one_line(exc: click.ClickException) -> str:
    """click's usage errors as our one line: the message, then where to read more."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        text += f" (see `{ctx.command_path} --help`)"
    return text


def safety_net(exc: OSError | RecursionError | MemoryError | ValueError) -> BuilderError:
    """What a reader did not turn into a BuilderError itself, as one: OS errors by errno with
    their path, Python's own limits as LimitError, any other ValueError as a bug to report."""
    if isinstance(exc, OSError):
        return os_error(exc)
    if isinstance(exc, RecursionError):
        return LimitError("an input is nested too deeply for Python to parse (RecursionError)")
    if isinstance(exc, MemoryError):
        return LimitError(
            "out of memory: an input is too large to read", hint="free memory or check the input"
        )
    if (digits := over_digit_limit(exc)) is not None:
        return LimitError(f"an input holds a number too long to read: {digits}")
    text = " ".join(str(exc).split())
    return BuilderError(
        f"unexpected {type(exc).__name__}: {text}", hint="a bug in builder: please report it with the command"
    )


def main(argv: list[str] | None = None) -> NoReturn:
    try:
        rv = cli.main(args=argv, prog_name="builder", standalone_mode=False)
    except BuilderError as exc:
        click.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.BadParameter as exc:
        # A path that is missing or of the wrong kind is bad input like any other (exit 10),
        # whichever command it was given to; other bad values are usage errors.
        # A missing argument is a usage error, whatever its type.
        is_path = isinstance(exc.param and exc.param.type, click.Path)
        code = InputError.exit_code if is_path and not isinstance(exc, click.MissingParameter) else EXIT_USAGE
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(code)
    except click.UsageError as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except (OSError, RecursionError, MemoryError, ValueError) as exc:
        err = safety_net(exc)
        click.echo(f"error: {err.one_line()}", err=True)
        sys.exit(err.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)

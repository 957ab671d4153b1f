"""The `builder` command line. The only place that catches BuilderError."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from . import lock as lock_mod
from .errors import BuilderError, CheckError, InputError, StaleLockError
from .log import Log
from .paths import Project, find_project
from .profile import load_all, load_profile
from .targets import host_target
from .wheelhouse import find_wheelhouse

# click's own usage errors get sysexits' EX_USAGE so they never collide with ours (2..).
EXIT_USAGE = 64


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _default_profile() -> str:
    target = host_target()
    if target is None:
        raise InputError("this host is not a known target; pass --profile", hint="see `builder profiles`")
    return f"minimal-{target.name}"


class LazyGroup(click.Group):
    """Commands that live beside their stage, imported only when named.

    Some pull in heavy libraries (LIEF for openmp, CycloneDX for sbom: ~0.6 s):
    `builder profiles` or `builder lock --check` should not pay for them.
    """

    LAZY = {
        "openmp": "builder.openmp.cli:openmp",
        "bench": "builder.bench:bench",
        "compare": "builder.compare:compare",
        "bisect": "builder.bisect:bisect",
        "tune": "builder.tune:tune",
        "verify": "builder.verify:verify",
        "sbom": "builder.sbom:sbom",
        "matrix": "builder.matrix:matrix",
        "clean": "builder.clean:clean",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.LAZY:
            module, _, attr = self.LAZY[name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Project folder with profiles/ and locks/ (default: found from the current folder).",
)
@click.version_option(package_name="runtime-builder")
@click.pass_context
def cli(ctx: click.Context, root: Path | None) -> None:
    """Build, audit, benchmark and package frozen PyTorch runtimes."""
    ctx.obj = Project(root=root.resolve()) if root else find_project()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def profiles(project: Project, as_json: bool) -> None:
    """List and validate every profile."""
    all_profiles = load_all(project.profiles)
    rows = [p.summary() for p in all_profiles]
    if as_json:
        _emit_json(rows)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(
            f"{r['name']:<{width}}  {r['target']:<15} py{r['python']:<5} {r['packages']:>3} packages"
            + (f"  (extends {r['extends']})" if r["extends"] else "")
        )
        for pkg, why in sorted(r["excluded"].items()):
            click.echo(f"{'':<{width}}  excluded {pkg}: {why}")
    click.echo(f"{len(rows)} profiles, all valid")


@cli.command()
@click.option("--profile", "names", multiple=True, help="Profile to lock (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Lock every profile.")
@click.option("--check", is_flag=True, help="Only check that the locks are up to date; exit 9 when stale.")
@click.option("--wheelhouse", type=click.Path(path_type=Path), help="Folder of wheels (e.g. CPU torch).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def lock(
    project: Project, names: tuple[str, ...], all_: bool, check: bool, wheelhouse: Path | None, as_json: bool
) -> None:
    """Resolve profiles for their targets into locks/P.lock (any target, from any host)."""
    if all_ == bool(names):
        raise InputError("give --profile P or --all")
    selected = load_all(project.profiles) if all_ else [load_profile(n, project.profiles) for n in names]
    log = Log()
    results = []
    stale: list[str] = []
    wh = None if check else find_wheelhouse(wheelhouse)
    for profile in selected:
        path = project.lock_path(profile.name)
        if check:
            try:
                lock_mod.check_lock(profile, path)
                results.append({"profile": profile.name, "lock": str(path), "status": "fresh"})
                log.line(f"fresh  {path}")
            except StaleLockError as exc:
                stale.append(exc.one_line())
                results.append(
                    {"profile": profile.name, "lock": str(path), "status": "stale", "reason": exc.one_line()}
                )
                log.line(f"STALE  {exc.one_line()}")
            continue
        with log.step(f"lock {profile.name} for {profile.target.uv_platform}, Python {profile.python}"):
            locked = lock_mod.compile_lock(profile, path, wh)
        results.append(
            {"profile": profile.name, "lock": str(path), "status": "written", "packages": len(locked.pins)}
        )
        log.line(f"  {len(locked.pins)} packages pinned with hashes -> {path}")
    if as_json:
        _emit_json(results)
    if stale:
        raise StaleLockError(f"{len(stale)} of {len(selected)} locks are stale; first: {stale[0]}")


@cli.command()
@click.option("--profile", "profile_name", help="Profile to build (default: minimal-<this host's target>).")
@click.option("--wheelhouse", type=click.Path(path_type=Path), help="Folder of wheels, e.g. CPU torch.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Where dist/<profile>/ goes.",
)
@click.option("--force", is_flag=True, help="Freeze and package even when the inputs are unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_obj
def build(
    project: Project, profile_name: str | None, wheelhouse: Path | None, out: Path, force: bool, as_json: bool
) -> None:
    """Install, freeze, check and package a profile (the host's minimal one by default)."""
    from .build import build as run_build
    from .inspect import human_size

    log = Log()
    result = run_build(
        project, profile_name or _default_profile(), wheelhouse=wheelhouse, out=out, log=log, force=force
    )
    if as_json:
        _emit_json(result)
    else:
        click.echo(
            f"built {result['profile']}: {result['artifact']} "
            f"({human_size(result['size_bytes'])}, {result['files']} files) {result['sha256']}"
        )


@cli.command("inspect")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(path: Path, as_json: bool) -> None:
    """Python, platform and packages by installed size of a venv, site-packages or dist."""
    from .inspect import inspect_path, render

    info = inspect_path(path)
    if as_json:
        _emit_json(info)
    else:
        click.echo(render(info))


@cli.command("diff")
@click.argument("a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff_cmd(a: Path, b: Path, as_json: bool) -> None:
    """Name every file that differs between two dists, and why (exit 8 when any does)."""
    from .repro import report

    for dist in (a, b):
        if not (dist / "manifest.json").is_file():
            raise InputError(f"{dist}: not a dist (no manifest.json)")
    rep = report(a, b)
    if as_json:
        _emit_json(rep)
    else:
        for d in rep["files"]:
            click.echo(f"{d['path']}: {d['why']}")
        click.echo(f"{rep['differing']} differing files")
    if rep["differing"]:
        raise CheckError(f"{rep['differing']} files differ between {a} and {b}")


def main(argv: list[str] | None = None) -> NoReturn:
    try:
        rv = cli.main(args=argv, prog_name="builder", standalone_mode=False)
    except BuilderError as exc:
        click.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)

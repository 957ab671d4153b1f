"""Run the real `builder` CLI in a subprocess, the way users and pipelines do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_builder(
    *args: str | Path, root: Path | None = None, env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "builder"]
    if root is not None:
        argv += ["--root", str(root)]
    argv += [str(a) for a in args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Bad input: the given exit code, no traceback, one `error:` line naming what is wrong."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def team_profile(script: str, *, runtime: str = "") -> str:
    """A Linux profile whose [program] is a script of the team's own, benched as
    `{program} {input} {output}`; `runtime` is the lines of a [runtime] table, if any."""
    table = f"[runtime]\n{runtime}" if runtime else ""
    return f"""\
description = "a program of the team's own"
[target]
name = "linux-x86_64"
python = "3.11"
[program]
name = "sep"
script = "{script}"
{table}[bench]
command = "{{program}} {{input}} {{output}}"
input-seconds = 1
"""


def local_index_profile(packages: str = "") -> str:
    """A Linux profile that requires rbprobe-app from the project's own wheels/ folder (tiny wheels
    the test writes); `packages` is more lines of its [packages] table."""
    return f"""\
description = "a profile over a local index"
[target]
name = "linux-x86_64"
python = "3.11"
[packages]
requirements = ["rbprobe-app"]
{packages}
[indexes]
find-links = ["wheels"]
"""


def assert_schema(document: object, command: str) -> None:
    """A real `builder COMMAND --json` document follows its published schema (builder/schemas/)
    and names it in its top-level `schema` key."""
    import jsonschema

    from builder.schemas import load, schema_id

    assert isinstance(document, dict) and document.get("schema") == schema_id(command), document
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
        for e in jsonschema.Draft202012Validator(load(command)).iter_errors(document)
    ]
    assert not errors, "\n".join(errors[:10])

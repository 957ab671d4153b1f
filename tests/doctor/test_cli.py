"""The command's edges, fast and in-process: registered, bad targets as one line with their exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main

from .conftest import ROOT


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["--root", str(ROOT), "doctor", *map(str, args)])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_doctor_is_a_command_with_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for option in ("--program", "--json", "--html", "--no-cost", "--seconds", "--model"):
        assert option in out


def test_a_target_that_is_nothing_is_one_line_exit_10(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, tmp_path / "missing")
    assert code == 10 and err.count("error:") == 1 and "Traceback" not in err


def test_a_program_needs_a_venv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "stems").mkdir()
    (tmp_path / "stems" / "stems").write_text("")
    (tmp_path / "_internal").mkdir()
    prog = tmp_path / "job.py"
    prog.write_text("print(1)\n")
    code, _, err = _run(capsys, tmp_path, "--program", prog)
    assert code == 10 and "--program needs a venv" in err, err

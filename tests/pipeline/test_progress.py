"""Live progress of the long stages: PyInstaller's log read as phases (over a real log, captured from
PyInstaller 6.22.3 at --log-level INFO), the step logger's sparse progress lines, and the process
runner that streams a tool's output as it comes."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest

from builder.errors import ToolError
from builder.log import PROGRESS_QUIET_S, Log
from builder.stages.package import archive_progress
from builder.tools import process
from builder.tools.pyinstaller_log import FreezeProgress, message_of, phase_of

LOG = Path(__file__).resolve().parents[1] / "fixtures" / "pyinstaller" / "info-6.22.3.log"


def test_a_real_pyinstaller_log_reads_as_its_phases_in_order() -> None:
    lines = LOG.read_text(encoding="utf-8").splitlines()
    phases = [p for p in map(phase_of, lines) if p is not None]
    assert phases == [
        "analysing the standard library",
        "analysing imports of tiny.py",
        "running package hooks",
        "analysing run-time hooks",
        "finding shared libraries",
        "writing the module archive (PYZ)",
        "writing the executable",
        "copying files into the folder",
        "PyInstaller done",
    ]


def test_progress_counts_the_hooks_and_keeps_the_phase() -> None:
    progress = FreezeProgress()
    started = [p for line in LOG.read_text(encoding="utf-8").splitlines() if (p := progress.feed(line))]
    assert len(started) == 9
    hooks = sum("Processing standard module hook" in line for line in LOG.read_text().splitlines())
    assert progress.hooks == hooks == 5 and progress.last_hook == "sqlite3"
    assert progress.phase == "PyInstaller done" and progress.warnings == 0
    assert progress.summary() == "PyInstaller done"  # counts only while imports are analysed
    progress.feed("13696 INFO: Processing module hooks (post-graph stage)...")
    assert progress.summary() == "running package hooks (5 hooks run; last: sqlite3)"


def test_lines_that_are_not_log_records_start_no_phase() -> None:
    assert message_of(" '/work/wt/package-speed/build/tools/pyinstaller-6.22.3-cp311-x86_64',") is None
    # a completion line is not the start of a phase, nor a warning that names a phase's words
    assert phase_of("14636 INFO: Building PYZ (ZlibArchive) /w/PYZ-00.pyz completed successfully.") is None
    assert phase_of("14759 INFO: Building COLLECT COLLECT-00.toc completed successfully.") is None
    assert phase_of("500 WARNING: Looking for dynamic libraries failed") is None
    assert phase_of("500 INFO: Analyzing hidden import 'csv'") is None
    progress = FreezeProgress()
    progress.feed("500 WARNING: Hidden import 'x' not found")
    assert progress.warnings == 1 and progress.phase == "starting PyInstaller"


def test_progress_lines_are_sparse_unless_a_phase_starts() -> None:
    out = io.StringIO()  # not a tty: the quiet pace
    log = Log(out)
    assert log.interval == PROGRESS_QUIET_S
    assert log.progress("a", "first")  # the first line of a key always prints
    assert not log.progress("a", "second")  # too soon
    assert log.progress("b", "other key")
    assert log.progress("a", "new phase", now=True)
    assert out.getvalue().splitlines() == ["    first", "    other key", "    new phase"]


def test_json_runs_keep_the_quiet_pace_even_on_a_tty() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert Log(Tty()).interval < Log(Tty(), quiet=True).interval == PROGRESS_QUIET_S


def test_package_progress_names_the_archive_and_its_megabytes() -> None:
    out = io.StringIO()
    report = archive_progress(Log(out), 492_000_000)
    report("p.tar.xz", 120_400_000, 30_000_000)
    report("p.tar.xz", 130_000_000, 31_000_000)  # within the interval: dropped
    report("p.zip", 50_000_000, 20_000_000)
    assert out.getvalue().splitlines() == [
        "    p.tar.xz: 120 of 492 MB read, 30 MB written",
        "    p.zip: 50 of 492 MB read, 20 MB written",
    ]


def test_stream_hands_over_each_line_as_it_comes_and_calls_idle_while_silent(tmp_path: Path) -> None:
    script = "import sys, time\nprint('one', flush=True)\ntime.sleep(0.6)\nprint('two', file=sys.stderr, flush=True)\n"
    seen: list[tuple[str, float]] = []
    idle: list[float] = []
    started = time.monotonic()
    process.stream(
        [sys.executable, "-c", script],
        tool="python",
        on_line=lambda line: seen.append((line, time.monotonic() - started)),
        on_idle=lambda: idle.append(time.monotonic() - started),
        idle_s=0.2,
        log_file=tmp_path / "tool.log",
    )
    assert [line for line, _ in seen] == ["one", "two"]
    assert seen[1][1] - seen[0][1] > 0.4  # streamed: 'one' came before the tool finished
    assert idle and all(seen[0][1] < t < seen[1][1] for t in idle)
    assert (tmp_path / "tool.log").read_text() == "one\ntwo\n"


def test_stream_failure_names_the_tool_and_its_last_lines() -> None:
    with pytest.raises(ToolError, match=r"python failed \(exit 3\): .*boom"):
        process.stream(
            [sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
            tool="python",
            on_line=lambda _: None,
        )
    with pytest.raises(ToolError, match="program not found"):
        process.stream(["/nonexistent/tool"], tool="tool", on_line=lambda _: None)

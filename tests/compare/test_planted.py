"""Planted slowdowns that bench, compare and bisect must find, on real runtimes (slow).

Each runtime is a real venv from the minimal lock (torch included), made in seconds from uv's
cache; variants add tiny hand-made wheels from a local wheelhouse. Effects are chosen to be
large against the noise of a shared 2-core machine: a 2.5 s sleep at interpreter start
against a 1.3-2.9 s startup, a process-wide hang against a 3 s stall limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import team_profile

from .conftest import ROOT, run_builder
from .schema_check import assert_follows_its_schema

pytestmark = pytest.mark.slow
FAST = ["--seconds", "0.3", "--model", "tiny"]


def run_foreign(root: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI on a project of the test's own (its profiles name a program other than stems)."""
    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *map(str, args)],
        capture_output=True, text=True, timeout=1800, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip


def _json(proc: subprocess.CompletedProcess[str]) -> dict:
    """The --json document, which follows its published schema (builder/schemas/<command>.schema.json)."""
    assert proc.stdout.strip(), proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert_follows_its_schema(doc)
    return doc


def test_bench_reports_every_field(venv_factory) -> None:
    venv = venv_factory("base")
    proc = run_builder("bench", venv, "--repeat", "2", *FAST, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _json(proc)
    s = r["summary"]
    for key in (
        "startup_s",
        "import_s",
        "separation_s",
        "total_s",
        "rtf",
        "cores_busy",
        "peak_rss_mb",
        "os_threads",
    ):
        assert s[key]["n"] == 2 and s[key]["median"] > 0, key
    assert r["threads"]["torch"] >= 1 and r["threads"]["at_import"] == r["threads"]["torch"]
    assert [o["family"] for o in r["openmp_loaded"]] == ["GNU libgomp"]
    assert len(r["imports"]["slowest_modules"]) == 15
    assert "torch" in r["imports"]["by_package_ms"]
    assert all(run["hung"] is None for run in r["runs"])


def test_bench_kills_a_hung_runtime_and_goes_on(venv_factory) -> None:
    venv = venv_factory("hangs", ("hangs",))
    proc = run_builder("bench", venv, "--repeat", "2", *FAST, "--stall", "3", "--json")
    assert proc.returncode == 8, proc.stderr[-2000:]  # CheckError, after the report
    r = _json(proc)
    assert len(r["runs"]) == 2 and all(
        "no output and no CPU time for 3 s" in run["hung"] for run in r["runs"]
    )
    assert any(f.startswith("hung: 2 of 2") for f in r["flags"])
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr


def test_compare_calls_the_planted_startup_hook_slower(venv_factory, tmp_path: Path) -> None:
    a, b = venv_factory("base"), venv_factory("slowpoke", ("slowpoke",))
    out = tmp_path / "report"
    # 6 rounds: the t-interval is honest about noise (t = 2.57 at 6, 3.18 at 4), where the old
    # bootstrap's 95% covered the truth about 74% of the time
    proc = run_builder("compare", a, b, "--repeat", "6", *FAST, "--metric", "startup", "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _json(proc)
    perf = r["performance"]["startup_s"]
    assert perf["verdict"]["call"] == "slower", perf
    assert perf["ci_low"] > 1.0 and perf["ratio"] > 1.15
    assert r["verdict"].startswith("B is ") and "slower" in r["verdict"]
    # the report names the cause: the package only in B, and its import at start
    assert [p["name"] for p in r["packages"]["only_in_b"]] == ["slowpoke"]
    assert r["imports"]["top_differences"][0]["package"] == "slowpoke_hook"
    assert r["imports"]["top_differences"][0]["diff_ms"] > 2000
    for name in ("report.md", "report.json", "report.html"):
        assert (out / name).stat().st_size > 1000
    assert json.loads((out / "report.json").read_text()) == r  # report.json is the --json document
    assert "<svg" in (out / "report.html").read_text()


def test_compare_identical_builds_is_never_called_slower_or_faster(venv_factory) -> None:
    a, b = venv_factory("base"), venv_factory("base-again")
    proc = run_builder("compare", a, b, "--repeat", "5", *FAST, "--metric", "startup", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _json(proc)
    d = r["decision"]
    # "same" only with the whole interval inside ±5%; a wider one is "inconclusive", with what would settle it
    assert d["verdict"] in ("same", "inconclusive"), r["performance"]["startup_s"]
    assert d["rounds"] == 5 and d["stopped"] == "last look"
    if d["verdict"] == "same":
        assert 0.95 <= d["ci_low"] and d["ci_high"] <= 1.05 and r["verdict"].startswith("same within ±5%")
    else:
        assert r["verdict"].startswith("inconclusive") and d["settle"], d
    assert (
        r["packages"]["only_in_a"] == r["packages"]["only_in_b"] == r["packages"]["different_version"] == []
    )
    assert all(t["same"] for t in r["threading"])


def test_compare_surfaces_a_runtime_forced_to_one_thread(venv_factory) -> None:
    """With compare's defaults (the small model, audio sized from the warm-up, rounds until decided),
    bounded by --time to keep the suite short."""
    a, b = venv_factory("base"), venv_factory("one-thread", (), {"threads": 1})
    proc = run_builder("compare", a, b, "--time", "150", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _json(proc)
    rows = {t["setting"]: t for t in r["threading"]}
    intra = rows["intra-op threads (torch.get_num_threads)"]
    assert intra["b"] == 1 and intra["a"] >= 2 and not intra["same"]
    assert rows["env OMP_NUM_THREADS"]["b"] == "1"
    assert rows["runtime settings from"]["b"].endswith("runtime.json")
    assert r["summary"]["b"]["os_threads"]["median"] < r["summary"]["a"]["os_threads"]["median"]
    # the headline is the job (the median of each run's chunk times), start-up a line of its own
    assert r["verdict_metric"] == "chunk_s" and r["startup"].startswith("start-up (time to ready)")
    assert r["settings"]["model"] == "small" and r["settings"]["seconds"] >= 2
    assert all(len(run["chunk_times"]) >= 4 for run in r["runs"]["a"] + r["runs"]["b"])
    d = r["decision"]
    assert d["elapsed_s"] <= 150 + 2 * (d["round_s"] or 0) and d["rounds"] >= 4
    # it calls one thread slower; unless A's two threads could not get two cores (a busy machine,
    # where one thread is faster: 2.6x at load 5-7 on this 2-CPU machine), which compare then says
    # under the headline, or the budget ran out first, which it says with what would settle it
    assert (
        d["verdict"] == "slower"
        or (r["caveat"] or "").startswith("caveat: A's")
        or (d["verdict"] == "inconclusive" and d["settle"])
    ), (r["verdict"], r["caveat"])
    assert d["verdict"] != "same", r["verdict"]


def test_bisect_reports_an_undecided_test_instead_of_clearing_it(venv_factory, wheelhouse: Path) -> None:
    """B is A plus a package that changes nothing: with 20 s per test the first test is rarely
    decided, and an undecided test is said to be undecided, never taken as 'not slower'."""
    a, b = venv_factory("base"), venv_factory("alpha-only", ("innocent-alpha",))
    proc = run_builder(
        "bisect", a, b, "--metric", "startup", "--time", "20", *FAST, "--find-links", wheelhouse, "--json"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _json(proc)
    first = r["steps"][0]
    assert r["mode"].startswith("sequential") and first["rounds"] >= 4
    if first["undecided"]:
        assert first["call"] == "inconclusive" and r["conclusion"].startswith("undecided: cannot tell"), r
        assert "nothing bisected" in r["conclusion"] and r["culprits"] == []
    else:  # decided within 20 s: the interval was clear of the band or inside it
        assert first["call"] in ("same", "faster", "slower"), first
        assert first["call"] != "same" or (0.95 <= first["ci_low"] and first["ci_high"] <= 1.05)


def test_tune_writes_a_config_that_stems_reads(venv_factory, tmp_path: Path) -> None:
    venv = venv_factory("tune")
    proc = run_builder("tune", venv, "--threads", "1", "--threads", "2", "--repeat", "1", *FAST, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _json(proc)
    cfg = json.loads((venv / "runtime.json").read_text())
    assert r["written"] and cfg["threads"] == r["best"]["threads"] and cfg["threads"] in (1, 2)
    assert cfg["matmul_precision"] in ("highest", "high", "medium") and "tuned" in cfg
    assert r["gain"]["verdict"] and r["gain"]["rounds"] == 3
    # a gain that 3 rounds cannot decide is reported as undecided, not as "same"
    assert r["gain"]["decided"] == (r["gain"]["call"] in ("slower", "faster", "same"))
    st = subprocess.run(
        [venv / "bin" / "python", "-m", "runtime_entry", "selftest", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            "PYTHONPATH": str(ROOT),
            "STEMS_RUNTIME_CONFIG": str(venv / "runtime.json"),
            "PATH": "/usr/bin:/bin",
        },
    )
    # (exit status not checked: selftest's matmul check fails under "medium", which tune may pick)
    data = json.loads(st.stdout)
    assert data["threads"]["torch"] == cfg["threads"] and data["config_source"].endswith("runtime.json")


def test_compare_calls_a_spinning_thread_slower(venv_factory) -> None:
    """A package whose .pth starts a thread that spins forever: every import fights it for the GIL."""
    a, b = venv_factory("base"), venv_factory("spinner", ("spinner",))
    proc = run_builder("compare", a, b, "--repeat", "3", *FAST, "--metric", "startup", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _json(proc)
    perf = r["performance"]["startup_s"]
    assert perf["verdict"]["call"] == "slower" and perf["ci_low"] > 1.0, perf
    assert r["summary"]["b"]["os_threads"]["median"] > r["summary"]["a"]["os_threads"]["median"]


FOREIGN_SCRIPT = """\
import sys
from pathlib import Path

import torch

out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
(out / "mix.txt").write_text(str(float(torch.ones(4).sum())))
"""


def test_bisect_of_a_program_that_knows_nothing_of_us_names_the_planted_package(
    venv_factory, wheelhouse: Path, tmp_path: Path
) -> None:
    """A and B are venvs of profiles whose [program] is a script of the project: every intermediate
    environment runs that script (behind the probe's hook), not stems."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "separate.py").write_text(FOREIGN_SCRIPT)
    for name, venv in (
        ("a", venv_factory("base")),
        ("b", venv_factory("alpha-slow", ("innocent-alpha", "slowpoke"))),
    ):
        (tmp_path / "profiles" / f"{name}.toml").write_text(team_profile("separate.py"))
        (tmp_path / "build" / name).mkdir(parents=True)
        (tmp_path / "build" / name / "venv").symlink_to(venv, target_is_directory=True)
    proc = run_foreign(
        tmp_path, "bisect", tmp_path / "build/a/venv", tmp_path / "build/b/venv", "--metric", "total",
        "--threshold", "0.1", "--repeat", "4", "--find-links", wheelhouse, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _json(proc)
    assert [e["name"] for e in r["extras"]] == ["innocent-alpha", "slowpoke"]
    assert [c["package"] for c in r["culprits"]] == ["slowpoke"], r["steps"]
    assert r["culprits"][0]["ci_low"] > 1.0
    c = r["counts"]
    assert c["builds"] + c["reused"] >= 1 and c["tests"] == len(r["steps"]) and c["runs"] > 0
    assert f"{c['builds']} builds" in r["conclusion"]
    assert "test 1: " in proc.stderr  # progress
    # the intermediate environments ran the script: its launcher, with the planted package's venv
    assert all(s["label"].startswith(("A+", "b/venv")) for s in r["steps"])
    assert r["a"]["workload"]["command"].startswith("{program}") and "separate.py" not in r["a"]["command"]

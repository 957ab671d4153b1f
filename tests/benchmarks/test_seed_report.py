"""The seed report's rendering (benchmarks/seed_render.py, pure): compare's and doctor's JSON in, the by-hand document out."""

from __future__ import annotations

from typing import Any

from seed_render import load_line, render

from builder.measure.judge.attribution import attribution
from builder.measure.judge.compare import import_diff, package_diff, performance, threading_rows
from runtime_doctor.rules import find_causes

PKG_A = {
    "torch": ("2.13.0+cpu", 700_000_000),
    "numpy": ("2.3.5", 40_000_000),
    "librosa": ("0.11.0", 2_000_000),
    "soundfile": ("0.13.1", 3_000_000),
    "scipy": ("1.16.3", 90_000_000),
}
PKG_B = {
    **PKG_A,
    "onnx": ("1.20.1", 50_000_000),
    "onnxruntime": ("1.23.2", 60_000_000),
    "julius": ("0.2.7", 100_000),
}


def _packages(pk: dict[str, tuple[str, int]]) -> dict[str, Any]:
    return {k: {"name": k, "version": v, "size": s} for k, (v, s) in pk.items()}


def _side(profile: str, packages: dict[str, tuple[str, int]]) -> dict[str, Any]:
    return {
        "runtime": {"label": profile, "kind": "venv", "path": f"/w/build/{profile}/venv", "profile": profile},
        "python": "3.11.14",
        "platform": "x86_64",
        "total_bytes": sum(s for _, s in packages.values()),
        "files": 1000,
        "install": {"venv_created_by": "uv 0.13.9", "installers": {"uv": len(packages)}},
        "openmp_files": {
            "runtimes": [{"family": "GNU libgomp", "path": "torch/lib/libgomp.so.1", "links": []}]
        },
    }


def _probe(interop: int, precision: str, imports_ms: dict[str, float]) -> dict[str, Any]:
    return {
        "threads": {"torch": 2, "at_import": 2, "interop": interop},
        "matmul_precision": precision,
        "runtime": {"settings": "profile (as STEMS_* variables)"},
        "env": {"OMP_NUM_THREADS": "2"},
    }


def compare_fixture(new_imports: dict[str, float] | None = None) -> dict[str, Any]:
    """A compare result built with compare's own pure functions: NEW 29% slower per chunk."""
    runs_a = [{"seconds_per_chunk": 0.10 + i / 1000, "startup_s": 2.0, "import_s": 1.8, "total_s": 8.0,
               "peak_rss_mb": 300.0} for i in range(5)]  # fmt: skip
    runs_b = [{"seconds_per_chunk": 0.13 + i / 1000, "startup_s": 2.1 + i / 100, "import_s": 1.9, "total_s": 9.0,
               "peak_rss_mb": 320.0} for i in range(5)]  # fmt: skip
    perf = performance(runs_a, runs_b)
    imp_a = {"total_s": 1.8, "by_package_ms": {"torch": 1500.0, "scipy": 200.0}}
    imp_b = {"total_s": 1.9, "by_package_ms": {"torch": 1550.0, "scipy": 210.0, **(new_imports or {})}}
    gnu = [{"family": "GNU libgomp", "path": "/w/torch/lib/libgomp.so.1"}]
    r: dict[str, Any] = {
        "a": _side("seed-old-linux-x86_64", PKG_A),
        "b": _side("seed-new-linux-x86_64", PKG_B),
        "settings": {
            "repeat": 5,
            "model": "tiny",
            "seconds": 20.0,
            "min_effect": 0.05,
            "order": "interleaved, alternating A B / B A",
            "ci": "Student t-interval",
        },
        "verdict": perf["seconds_per_chunk"]["verdict"]["text"],
        "verdict_metric": "seconds_per_chunk",
        "startup": "start-up (time to ready): A 2.00 s, B 2.12 s; B is 6% slower (95% CI 5–7%)",
        "packages": package_diff(_packages(PKG_A), _packages(PKG_B)),
        "openmp_loaded": {"a": gnu, "b": gnu},
        "threading": threading_rows(_probe(4, "high", {}), _probe(16, "highest", {})),
        "imports": {"a": imp_a, "b": imp_b, "top_differences": import_diff(imp_a, imp_b)},
        "summary": {
            "a": {"seconds_per_chunk": {"median": 0.102, "iqr": 0.002}, "peak_rss_mb": {"median": 300.0}},
            "b": {"seconds_per_chunk": {"median": 0.132, "iqr": 0.002}, "peak_rss_mb": {"median": 320.0}},
        },
        "performance": perf,
        "flags": {"a": [], "b": []},
    }
    r["attribution"] = attribution(r)
    return r


def doctor_fixture(interop: int) -> dict[str, Any]:
    """A doctor result from the doctor's own find_causes, on a 2-CPU machine."""
    facts = {
        "usable_cpus": 2, "host_cpus": 2, "cpu_mask": [0, 1], "cgroup_quota_cores": None, "threads": 2,
        "threads_requested": 2, "threads_at_import": 2, "interop": interop, "stems": True,
        "env_parent": {}, "env_at_import": {"OMP_NUM_THREADS": "2"}, "settings_calls": [],
        "openmp": [{"path": "/w/torch/lib/libgomp.so.1", "threads": 2, "api": "openmp"}],
        "libraries_loaded": [], "thread_rows": [], "load_average": 1.0,
        "job_seconds": 0.13, "job_unit": "s/chunk", "wall_s": 9.0, "cores_busy": 1.8,
    }  # fmt: skip
    causes, notes = find_causes(facts)
    for c in causes:
        c["cost"] = {"measured": True, "with_fix": "STEMS_INTEROP_THREADS=1", "before": 0.13, "after": 0.11,
                     "unit": "s/chunk", "ratio": 1.18, "runs": "one run each"}  # fmt: skip
    verdict = (
        "no problem found"
        if not causes
        else f"{len(causes)} cause(s) found: " + ", ".join(c["id"] for c in causes)
    )
    return {"runtime": {"label": "x", "kind": "venv"}, "verdict": verdict, "causes": causes, "notes": notes,
            "figures": facts}  # fmt: skip


META = {
    "date": "2026-12-03 12:00 UTC",
    "machine": "Xeon, 2 CPUs",
    "command": "make seed-report",
    "load": load_line([3.0, 2.0, 1.0], [4.0, 3.0, 2.0], 2),
    "excluded": {"diffq": "no cp311 wheel"},
    "reports": "docs/seed-report",
}


def test_the_seed_report_has_the_by_hand_sections_with_measured_figures() -> None:
    md = render(compare_fixture(), doctor_fixture(4), doctor_fixture(16), META)
    for heading in ("## Performance results", "### Core packages", "### Extra packages in NEW",
                    "## OpenMP configuration", "## Threading configuration", "## Imports",
                    "## Named causes (`builder doctor`)", "## The hypotheses, answered"):  # fmt: skip
        assert heading in md, heading
    assert "SHARED" in md and "2026-12-03 12:00 UTC" in md and "`make seed-report`" in md
    assert "NEW is 29% slower (95% CI 29–30%)" in md  # the headline, with its interval
    assert "| torch | 2.13.0+cpu | 2.13.0+cpu | same |" in md
    assert "| onnxruntime | not installed | 1.23.2 |" in md
    assert "| diffq | not installed | not installed (excluded: no cp311 wheel) |" in md
    assert "| inter-op threads | 4 | 16 | **differs** |" in md
    # the doctor names NEW's inter-op threads, not OLD's, and the answers say so with the cost
    old, new = md.split("### OLD", 1)[1].split("### NEW", 1)
    assert "**no problem found**" in old and "interop-threads" in new
    answers = md.split("## The hypotheses, answered", 1)[1]
    assert (
        "0.13 → 0.11 s/chunk with STEMS_INTEROP_THREADS=1 (one run each): the fix made the job faster"
        in answers
    )
    assert "imports none of the suspected extra packages" in answers
    assert "**3. Installation method (uv vs pip).** Not answered by this report" in answers
    assert "cannot be answered on Linux" in answers


def test_an_imported_extra_package_is_named_in_the_answer() -> None:
    md = render(compare_fixture({"onnxruntime": 420.0}), doctor_fixture(4), doctor_fixture(16), META)
    answers = md.split("## The hypotheses, answered", 1)[1]
    assert "NEW's program imports onnxruntime (420.0 ms)" in answers
    assert "imports none of the suspected" not in answers


def test_compares_caveat_stands_under_the_headline() -> None:
    r = {**compare_fixture(), "caveat": "caveat: A's 2 threads kept 0.5 cores busy in 5 of 5 runs"}
    md = render(r, doctor_fixture(4), doctor_fixture(16), META)
    assert "(95% CI 29–30%)**\n\n*Caveat: OLD's 2 threads kept 0.5 cores busy" in md


def test_a_quiet_machine_is_not_marked_shared() -> None:
    assert "SHARED" not in load_line([0.1, 0.1, 0.1], [0.2, 0.1, 0.1], 2)


def test_the_runs_own_load_and_an_earlier_15_minutes_are_not_other_jobs() -> None:
    # 2 threads of the report's own work, 15 minutes after a busy hour: quiet
    assert "SHARED" not in load_line([0.97, 1.2, 2.75], [1.23, 1.3, 2.75], 2)
    assert "SHARED" in load_line([1.5, 1.2, 1.0], [2.0, 1.5, 1.1], 2)  # busy when it began
    assert "SHARED" in load_line([0.2, 0.2, 0.2], [4.5, 2.0, 1.0], 2)  # others joined during it

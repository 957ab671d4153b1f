"""find_causes on facts as the doctor gathers them (pure, fast): each cause alone, and a clean runtime."""

from __future__ import annotations

from typing import Any

import pytest

from builder.measure.show.doctor import render, render_html
from runtime_doctor.host import parse_cpu_max
from runtime_doctor.rules import find_causes, openmp_pools

GOMP = "/v/lib/python3.11/site-packages/torch/lib/libgomp.so.1"


def facts(**change: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "runtime": {"label": "v", "kind": "venv"},
        "job_seconds": 0.1,
        "job_unit": "s/chunk",
        "wall_s": 5.0,
        "cores_busy": 1.8,
        "host_cpus": 2,
        "cpu_mask": [0, 1],
        "cgroup_quota_cores": None,
        "usable_cpus": 2,
        "threads": 2,
        "threads_requested": 2,
        "threads_at_import": 2,
        "interop": 1,
        "env_parent": {},
        "env_at_import": {"OMP_NUM_THREADS": "2"},
        "settings_calls": [{"call": "set_num_threads", "value": 2, "at_s": 1.0}],
        "probe": True,
        "openmp": [{"path": GOMP, "threads": 2, "api": "openmp"}],
        "libraries_loaded": [],
        "thread_rows": [
            {"tid": 1, "cpu_s": 4.0, "cores_after_job": None, "affinity": [0, 1], "pinned": False},
            {"tid": 2, "cpu_s": 3.9, "cores_after_job": 0.0, "affinity": [0, 1], "pinned": False},
        ],
        "stems": True,
    }
    return {**base, **change}


def ids(f: dict[str, Any]) -> list[str]:
    return [c["id"] for c in find_causes(f)[0]]


def test_clean_facts_name_nothing() -> None:
    assert find_causes(facts()) == ([], [])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"interop": 16}, "interop-threads"),
        (
            {
                "env_at_import": {"GOMP_CPU_AFFINITY": "0"},
                "thread_rows": [
                    {"tid": 1, "cpu_s": 4.0, "cores_after_job": None, "affinity": [0], "pinned": True},
                    {"tid": 2, "cpu_s": 3.9, "cores_after_job": 0.0, "affinity": [0], "pinned": True},
                ],
            },
            "affinity-pinning",
        ),
        ({"cpu_mask": [0], "usable_cpus": 1}, "cpu-limit"),
        ({"cgroup_quota_cores": 1.0, "usable_cpus": 1}, "cpu-limit"),
        (
            {
                "stems": False,
                "threads": 1,
                "threads_requested": None,
                "env_parent": {"OMP_NUM_THREADS": "1"},
                "env_at_import": {"OMP_NUM_THREADS": "1"},
                "settings_calls": [],
            },
            "inherited-omp-num-threads",
        ),
        (
            {
                "openmp": [
                    {"path": GOMP, "threads": 2},
                    {"path": "/v/scikit_learn.libs/libgomp-e9.so.1.0.0", "threads": 2},
                ]
            },
            "two-openmp-runtimes",
        ),
        (
            {
                "libraries_loaded": ["onnxruntime"],
                "thread_rows": [
                    {"tid": 3, "cpu_s": 5.0, "cores_after_job": 0.9, "affinity": [0, 1], "pinned": False}
                ],
            },
            "spinning-threads",
        ),
        (
            {"settings_calls": [{"call": "set_num_threads", "value": v, "at_s": 1.0} for v in (2, 1, 2)]},
            "settings-reapplied",
        ),
    ],
)
def test_each_cause_alone_is_named_alone(change: dict[str, Any], expected: str) -> None:
    assert ids(facts(**change)) == [expected]


def test_a_kmp_variable_under_gnu_openmp_is_a_note_not_a_cause() -> None:
    causes, notes = find_causes(facts(env_at_import={"KMP_AFFINITY": "compact"}))
    assert causes == [] and "GNU libgomp) ignores it" in notes[0]


def test_a_pinning_variable_turned_off_is_nothing() -> None:
    assert find_causes(facts(env_at_import={"OMP_PROC_BIND": "false", "KMP_AFFINITY": "disabled"})) == (
        [],
        [],
    )


def test_one_thread_asked_for_by_the_runtime_is_not_an_inherited_one() -> None:
    f = facts(
        threads=1,
        threads_requested=1,
        env_parent={"OMP_NUM_THREADS": "1"},
        env_at_import={"OMP_NUM_THREADS": "1"},
        settings_calls=[],
    )
    causes, notes = find_causes(f)
    assert causes == [] and "its own settings ask for 1" in notes[0]


def test_spinning_threads_of_an_unknown_library_are_named_as_such() -> None:
    rows = [{"tid": 3, "cpu_s": 5.0, "cores_after_job": 0.9, "affinity": None, "pinned": False}]
    (c,), _ = find_causes(facts(thread_rows=rows, libraries_loaded=["numba"]))
    assert "another library" in c["title"] and "numba" in c["title"]


def test_reports_render_causes_and_figures() -> None:
    causes, notes = find_causes(facts(interop=16))
    causes[0]["cost"] = {"measured": True, "with_fix": "STEMS_INTEROP_THREADS=1", "before": 0.2, "after": 0.1,
                         "unit": "s/chunk", "ratio": 2.0, "runs": "one run each"}  # fmt: skip
    r = {"runtime": {"label": "v<1>", "kind": "venv"}, "verdict": "1 cause(s) found: interop-threads",
         "causes": causes, "notes": notes, "figures": facts()}  # fmt: skip
    text = render(r)
    assert "[interop-threads]" in text and "cost: 0.2 -> 0.1 s/chunk with STEMS_INTEROP_THREADS=1" in text
    assert "fix: set `runtime.interop-threads = 1`" in text and "CPUs: 2 usable" in text
    page = render_html(r)
    assert 'id="interop-threads"' in page and "v&lt;1&gt;" in page and "<script" not in page


def test_cpu_max() -> None:
    assert parse_cpu_max("200000 100000") == 2.0
    assert parse_cpu_max("max 100000") is None and parse_cpu_max("garbage") is None


def test_a_busy_machine_is_a_note() -> None:
    causes, notes = find_causes(facts(load_average=5.2))
    assert causes == [] and notes[0].startswith("the machine was busy (load average 5.2 on 2 CPUs)")


def test_openmp_pools_are_one_per_real_file() -> None:
    pool = {"user_api": "openmp", "internal_api": "openmp", "prefix": "libgomp", "filepath": GOMP,
            "version": None, "num_threads": 2}  # fmt: skip
    blas = {**pool, "user_api": "blas", "filepath": "/v/libopenblas.so"}
    assert [o["threads"] for o in openmp_pools([pool, dict(pool), blas])] == [2]


def test_a_spinning_thread_is_judged_over_the_linger_not_over_the_exit() -> None:
    from builder.measure.judge.doctor_threads import LINGER_S, cores_after_job
    from builder.measure.take.runner import Sample

    # main thread 1 asleep; thread 2 spins at 0.8 cores through the linger (started at t=100); the
    # last sample comes during the exit, after the linger, when thread 2 is already gone
    samples = [
        Sample(t=100 + i * 0.2, cpu_s=0, threads_cpu_s={1: 1.0, 2: 5.0 + 0.8 * i * 0.2}) for i in range(11)
    ]
    samples.append(Sample(t=100 + LINGER_S + 0.4, cpu_s=0, threads_cpu_s={1: 1.1}))
    after = cores_after_job(samples, 100.0, LINGER_S, 1)
    assert after == {2: 0.8}
    assert cores_after_job(samples[:2], 100.0, LINGER_S, 1) == {}  # nothing sampled after SETTLE_S


def test_cores_busy_of_a_program_is_the_runners_cpu_over_the_job_up_to_the_linger() -> None:
    from builder.measure.take.doctor_run import Watched, cores_busy
    from builder.measure.take.runner import ProcessResult, Sample

    # 1.5 cores for 2 s, then the linger (started at epoch 1002): asleep for 2 s
    samples = [Sample(t=i * 0.5, cpu_s=1.5 * min(i * 0.5, 2.0)) for i in range(9)]
    res = ProcessResult(argv=("p",), returncode=0, stdout="", stderr="", wall_s=4.0, first_output_s=None,
                        last_output_s=None, cpu_s=3.0, peak_rss_mb=None, os_threads=None, samples=tuple(samples),
                        killed=None, pid=1, started_epoch=1000.0)  # fmt: skip
    busy, source = cores_busy(Watched(res=res, probe={"linger_started": 1002.0}))
    assert busy == 1.5 and source is not None and "linger" in source
    assert cores_busy(Watched(res=res, probe=None))[0] == 0.75  # no probe: to the exit
    assert cores_busy(Watched(res=res, probe=None, bench={"cpu_cores_busy": 1.9})) == (
        1.9,
        "stems bench: its separation's CPU / wall seconds",
    )


def test_a_run_without_a_probe_says_so() -> None:
    r = {"runtime": {"label": "sep", "kind": "dist"}, "verdict": "no cause found", "causes": [], "notes": [],
         "figures": facts(settings_calls=None, probe=False)}  # fmt: skip
    assert "not observed (the program wrote no probe)" in render(r)


def test_the_rule_books_variables_are_the_contracts() -> None:
    from builder.contract import REPORTED_ENV, SETTINGS_ENV
    from runtime_doctor import host, rules

    assert rules.SETTINGS_ENV == SETTINGS_ENV
    assert set(REPORTED_ENV) <= set(host.WATCHED_ENV) and set(SETTINGS_ENV.values()) <= set(host.WATCHED_ENV)

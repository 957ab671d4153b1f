"""Pure parts: statistics, verdicts, importtime parsing, diffs, closure, and the reports' structure."""

from __future__ import annotations

import json
import random
from html.parser import HTMLParser

import pytest

from builder.measure.judge.bisect import closure, extras_of
from builder.measure.judge.compare import package_diff, performance
from builder.measure.judge.stats import paired_ratio, spread, verdict
from builder.measure.show import html, markdown
from builder.measure.take.importtime import import_summary, parse_importtime

from .schema_check import assert_follows_its_schema

IMPORTTIME = """import time: self [us] | cumulative | imported package
import time:       100 |        100 |   encodings.aliases
import time:       400 |        500 | encodings
import time:    800000 |     800000 |     slowpoke_hook
import time:      2000 |     802000 | site
import time:       300 |        300 |   yaml.error
import time:    530000 |     530000 |   torch._C
import time:     28000 |     558000 | torch
"""


def test_parse_importtime_depth_and_totals() -> None:
    rows = parse_importtime(IMPORTTIME + "stems: something else on stderr\n")
    assert [r["module"] for r in rows] == [
        "encodings.aliases",
        "encodings",
        "slowpoke_hook",
        "site",
        "yaml.error",
        "torch._C",
        "torch",
    ]
    assert [r["depth"] for r in rows] == [1, 0, 2, 0, 1, 1, 0]
    s = import_summary(rows)
    assert s["total_s"] == 1.3605  # only depth-0 cumulative times add up
    assert s["slowest_modules"][0] == {"module": "slowpoke_hook", "self_ms": 800.0, "cumulative_ms": 800.0}
    assert s["by_package_ms"]["torch"] == 558.0 and "yaml" not in s["by_package_ms"]  # < 0.5 ms dropped


def test_ratio_ci_excludes_one_for_a_real_slowdown() -> None:
    rng = random.Random(1)
    a = [2.0 + rng.uniform(-0.3, 0.3) for _ in range(5)]
    b = [x + 0.8 + rng.uniform(-0.3, 0.3) for x in a]
    stat = paired_ratio(a, b)
    assert stat["ci_low"] > 1.0 and 1.2 < stat["ratio"] < 1.6
    assert verdict(stat)["call"] == "slower"
    assert verdict(paired_ratio(b, a))["call"] == "faster"


def test_identical_samples_are_same_only_when_the_interval_fits_the_band() -> None:
    rng = random.Random(2)
    a = [2.0 + rng.uniform(-0.3, 0.3) for _ in range(6)]
    b = [2.0 + rng.uniform(-0.3, 0.3) for _ in range(6)]
    noisy = paired_ratio(a, b)
    v = verdict(noisy)
    # the old verdict printed "no difference detected" here, for an interval of about ±15%
    assert noisy["ci_high"] - noisy["ci_low"] > 0.1
    assert v["call"] == "inconclusive" and "neither outside nor inside the ±5% band" in v["text"]
    quiet = paired_ratio(
        [2.0 + x / 100 for x in (1, -1, 0, 2, -2, 1)], [2.0 + x / 100 for x in (0, 1, -1, 1, -1, 2)]
    )
    assert verdict(quiet)["call"] == "same" and verdict(quiet)["text"].startswith("same within ±5% (B/A 1.00")


def test_verdict_needs_three_rounds_and_the_whole_interval_outside_the_band() -> None:
    assert verdict(paired_ratio([1.0, 1.0], [2.0, 2.0]))["call"] == "unknown"
    tiny = {"n": 9, "ratio": 1.02, "ci_low": 1.01, "ci_high": 1.03}
    assert verdict(tiny)["call"] == "same"  # a real difference, inside the band: the same for this purpose
    assert verdict(tiny, min_effect=0.005)["call"] == "slower"
    # excludes 1.0 but reaches into the band: not yet "slower", and certainly not "same"
    edge = {"n": 5, "ratio": 1.12, "ci_low": 1.03, "ci_high": 1.22}
    assert verdict(edge)["call"] == "inconclusive"
    assert verdict({"n": 5, "ratio": 0.8, "ci_low": 0.7, "ci_high": 0.93})["call"] == "faster"


def test_spread() -> None:
    assert spread([3.0, 1.0, 2.0, None]) == {"n": 3, "median": 2.0, "min": 1.0, "max": 3.0, "iqr": 1.0}
    assert spread([])["median"] is None


def test_package_diff_and_bisect_sets() -> None:
    a = {
        "numpy": {"name": "numpy", "version": "2.0", "size": 10, "requires": []},
        "torch": {"name": "torch", "version": "2.13", "size": 100, "requires": []},
    }
    b = {
        **a,
        "numpy": {"name": "numpy", "version": "2.1", "size": 11, "requires": []},
        "onnx": {"name": "onnx", "version": "1.2", "size": 5, "requires": ["numpy", "protobuf"]},
        "protobuf": {"name": "protobuf", "version": "5", "size": 3, "requires": []},
    }
    d = package_diff(a, b)
    assert [p["name"] for p in d["same"]] == ["torch"]
    assert [p["name"] for p in d["different_version"]] == ["numpy"]
    assert [p["name"] for p in d["only_in_b"]] == ["onnx", "protobuf"] and d["only_in_a"] == []
    extras = extras_of(a, b)
    assert extras == ["numpy", "onnx", "protobuf"]
    assert closure(["onnx"], b, extras) == ["numpy", "onnx", "protobuf"]
    assert closure(["protobuf"], b, extras) == ["protobuf"]


def _fake_result() -> dict:
    runs_a = [{"startup_s": 1.0 + i / 100, "total_s": 3.0, "import_s": 0.9} for i in range(5)]
    runs_b = [{"startup_s": 1.8 + i / 100, "total_s": 3.8, "import_s": 1.7} for i in range(5)]

    def side(label: str) -> dict:
        return {
            "runtime": {
                "label": label,
                "kind": "venv",
                "path": f"/x/{label}",
                "profile": None,
                "command": "python",
            },
            "python": "3.11.7",
            "platform": "x86_64",
            "total_bytes": 10,
            "files": 2,
            "install": {"venv_created_by": "uv 0.13.9", "installers": {"uv": 3}},
            "openmp_files": {"runtimes": [{"family": "GNU libgomp", "path": "torch/lib/libgomp.so.1"}]},
        }

    def imports(extra: dict) -> dict:
        return {
            "total_s": 1.0,
            "by_package_ms": {"torch": 500.0, **extra},
            "slowest_modules": [],
        }

    summary = lambda runs: {m: spread([r[m] for r in runs]) for m in ("startup_s", "total_s", "import_s")}  # noqa: E731
    return {
        "a": side("small"),
        "b": side("big<&>"),
        "settings": {
            "repeat": 5,
            "model": "tiny",
            "seconds": 0.5,
            "min_effect": 0.05,
            "primary_metric": "startup_s",
            "order": "interleaved",
            "ci": "bootstrap",
        },
        "verdict": "B is 80% slower (95% CI 78–82%)",
        "verdict_metric": "startup_s",
        "packages": package_diff(
            {"torch": {"name": "torch", "version": "1", "size": 5}},
            {
                "torch": {"name": "torch", "version": "1", "size": 5},
                "slowpoke": {"name": "slowpoke", "version": "1.0", "size": 1},
            },
        ),
        "openmp_loaded": {"a": [], "b": [{"family": "GNU libgomp", "path": "/t/libgomp.so.1"}]},
        "threading": [{"setting": "inter-op threads", "a": 1, "b": 2, "same": False}],
        "imports": {
            "a": imports({}),
            "b": imports({"slowpoke_hook": 800.0}),
            "top_differences": [{"package": "slowpoke_hook", "a_ms": 0.0, "b_ms": 800.0, "diff_ms": 800.0}],
        },
        "summary": {"a": summary(runs_a), "b": summary(runs_b)},
        "performance": performance(runs_a, runs_b),
        "flags": {"a": [], "b": ["single-threaded: x"]},
        "runs": {"a": runs_a, "b": runs_b},
    }


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_structure() -> None:
    r = _fake_result()
    page = html.compare_page(r)
    p = _Collect()
    p.feed(page)
    tags = [t for t, _ in p.tags]
    ids = {a.get("id") for _, a in p.tags}
    assert {"verdict", "performance", "imports", "packages", "install", "openmp", "threading"} <= ids
    assert "script" not in tags  # self-contained, no JS
    assert tags.count("svg") == len(r["performance"]) + 1  # one distribution per metric + import bars
    circles = [a for t, a in p.tags if t == "circle"]
    assert len([c for c in circles if c["class"] == "run-a"]) == 5 * len(r["performance"])
    assert any(a.get("class") == "verdict slower" for _, a in p.tags)
    assert "big&lt;&amp;&gt;" in page  # labels are escaped
    text = "".join(p.text)
    assert "slowpoke_hook" in text and "B is 80% slower" in text


def test_markdown_report_sections() -> None:
    md = markdown.compare_report(_fake_result())
    for heading in (
        "## Performance",
        "## Packages",
        "## Install method and tools",
        "## OpenMP",
        "## Threading",
        "## Import time",
    ):
        assert heading in md
    assert "| slowpoke | only in B |" in md
    assert "**differs**" in md
    assert json.dumps(_fake_result())  # the JSON report is plain data


@pytest.mark.parametrize("values", [[1.0, 1.0, 1.0], [5.0, 5.0, 5.0, 5.0]])
def test_ratio_of_constant_equal_samples_is_exactly_one(values: list[float]) -> None:
    stat = paired_ratio(values, values)
    assert stat["ratio"] == stat["ci_low"] == stat["ci_high"] == 1.0


def test_a_runtime_without_bench_fails_its_runs_with_one_clear_line(tmp_path) -> None:
    """A run whose runtime prints no JSON is recorded as failed; the benchmark goes on, then exits 8."""
    from builder.errors import CheckError
    from builder.measure.bench import bench_runtime
    from builder.measure.judge.bench import enforce
    from builder.measure.take.runs import RunOptions
    from builder.measure.take.subject import Subject

    fake = tmp_path / "stems"
    fake.write_text("#!/bin/sh\necho \"stems: error: argument command: invalid choice: '$1'\" >&2\nexit 2\n")
    fake.chmod(0o755)
    rt = Subject(label="old", kind="dist", path=tmp_path, argv=(str(fake),), importtime=False)
    result = bench_runtime(rt, repeat=2, opts=RunOptions(timeout=30, stall=10), warmup=False)
    r = json.loads(json.dumps(result.to_json(), default=str))  # as `builder bench --json` prints it
    assert assert_follows_its_schema(r) == "bench"
    assert [bool(run["failed"]) for run in r["runs"]] == [True, True]
    assert "needs a rebuild" in r["runs"][0]["failed"] and r["summary"] == {}
    assert r["flags"][0].startswith("failed: 2 of 2 runs")
    with pytest.raises(CheckError, match="2 of 2 runs failed"):
        enforce(result)


def _job_runs(n: int, chunk_b: float) -> tuple[list[dict], list[dict]]:
    """Runs whose process wall time is start-up dominated, the same on both sides, while B's job
    (seconds per chunk) is `chunk_b` times A's: the one-thread case that a wall-time headline hid."""
    runs_a, runs_b = [], []
    for i in range(n):
        wobble = 1 + (i % 3 - 1) / 50
        runs_a.append({"startup_s": 2.0 * wobble, "total_s": 4.0 * wobble, "chunk_s": 0.1 * wobble})
        runs_b.append({"startup_s": 2.0 / wobble, "total_s": 4.1 / wobble, "chunk_s": 0.1 * chunk_b * wobble})
    return runs_a, runs_b


def _result_from(runs_a: list[dict], runs_b: list[dict]) -> dict:
    from builder.measure.judge.compare import startup_line
    from builder.measure.take.metrics import TIME_METRICS

    perf = performance(runs_a, runs_b)
    head = TIME_METRICS[0]
    return {
        **_fake_result(),
        "performance": perf,
        "verdict": perf[head]["verdict"]["text"],
        "verdict_metric": head,
        "startup": startup_line(perf),
        "settings": {**_fake_result()["settings"], "repeat": len(runs_a), "ci": "t"},
    }


def test_the_headline_is_the_job_and_start_up_is_its_own_line() -> None:
    r = _result_from(*_job_runs(5, 1.47))
    assert r["verdict_metric"] == "chunk_s"
    assert r["performance"]["total_s"]["verdict"]["call"] != "slower"  # what the old headline missed
    md = markdown.compare_report(r)
    assert "**Verdict (separation, median seconds per chunk): B is 47% slower (95% CI" in md
    assert "\nStart-up (time to ready): A 2.00 s, B 2.00 s; " in md
    page = html.compare_page(r)
    assert 'id="startup"' in page and "B is 47% slower" in page


def test_too_few_rounds_print_no_95_percent_anywhere() -> None:
    r = _result_from(*_job_runs(2, 1.47))
    assert r["verdict"].startswith("no interval: 2 paired rounds")
    for text in (markdown.compare_report(r), html.compare_page(r)):
        assert "95%" not in text and "needs 3 rounds" in text


def test_a_side_starved_of_cores_puts_a_caveat_under_the_headline() -> None:
    """The one-thread variant on a busy 2-CPU machine: A's two threads share one core, so B (one
    thread) comes out faster; the headline must say that it measured the machine, not the runtime."""
    from builder.measure.judge.compare import headline_caveat

    runs_a, runs_b = _job_runs(5, 0.4)
    for run in runs_a:
        run.update(single_threaded=True, cores_busy=0.5, busy_threads=2, bench_threads={"intra_op": 2})
    for run in runs_b:
        run.update(single_threaded=False, cores_busy=0.55, bench_threads={"intra_op": 1})
    r = _result_from(runs_a, runs_b)
    r["caveat"] = headline_caveat(runs_a, runs_b, load=(5.4, 6.8), cpus=2)
    assert r["verdict"].startswith("B is 60% faster")
    assert r["caveat"].startswith(
        "caveat: A's 2 threads kept 0.5 cores busy in 5 of 5 runs (load average up to 6.8"
    )
    md = markdown.compare_report(r)
    assert "**\n\n*Caveat: A's 2 threads kept 0.5 cores busy" in md
    assert 'id="caveat"' in html.compare_page(r)
    # a quiet machine, or a side that is single-threaded in a minority of runs: no caveat
    assert headline_caveat(runs_b, runs_b) is None
    # one busy thread: a model too small to split, not contention
    one = [{**run, "busy_threads": 1} for run in runs_a]
    assert headline_caveat(one, runs_b) is None
    runs_a[0]["single_threaded"] = runs_a[1]["single_threaded"] = runs_a[2]["single_threaded"] = False
    assert headline_caveat(runs_a, runs_b) is None

"""bench, compare, bisect and tune publish their --json documents' schemas (builder/schemas/):
the documents judge/ makes from recorded runs follow them, and a renamed key fails.

The runs are real: the rounds of a recorded compare (fixtures/compare_noise.json, two real
runtimes on this kind of machine), judged by the same functions the commands call. The commands'
own output is checked against the same schemas in the slow tests (test_planted.py) and, for
bench, in test_units.py."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from builder.measure.judge.bench import bench_result
from builder.measure.judge.bisect import Bisection, Counts, Undecided, conclusion, culprit, step_record
from builder.measure.judge.compare import Measured, Side, comparison
from builder.measure.judge.sequential import SEQUENTIAL, fixed_plan, run_rounds
from builder.measure.judge.tune import Candidate, Machine, Settings, Tuning, best_of, gain_of
from builder.measure.take.runs import RunOptions
from builder.measure.take.subject import Subject

from .schema_check import COMMANDS, SCHEMAS, assert_follows_its_schema, schema_errors

FIXTURE = Path(__file__).parent / "fixtures" / "compare_noise.json"
OPTS = RunOptions(seconds=4.5, model="small")
FACTS = {
    "python": "3.11.13", "platform": "linux-x86_64", "total_bytes": 1_200_000_000, "files": 9000,
    "install": {"venv_created_by": "uv 0.9.7", "installers": {"uv": 120}},
    "openmp_files": {"runtimes": [{"path": "torch/lib/libgomp.so.1", "family": "GNU libgomp", "size": 1, "links": []}]},
    "packages": {"torch": {"name": "torch", "version": "2.13.0+cpu", "size": 700_000_000}},
}  # fmt: skip


def _subject(label: str) -> Subject:
    return Subject(
        label=label, kind="venv", path=Path("/tmp") / label, argv=("python", "-m", "runtime_entry")
    )


def _rounds() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rounds = json.loads(FIXTURE.read_text())["sessions"][0]["rounds"]
    runs_a = [
        {"hung": None, "index": i, "order": "BA" if i % 2 else "AB", **r["a"]} for i, r in enumerate(rounds)
    ]
    runs_b = [
        {"hung": None, "index": i, "order": "BA" if i % 2 else "AB", **r["b"]} for i, r in enumerate(rounds)
    ]
    return runs_a, runs_b


def _outcome(key: str = "chunk_s", plan: Any = SEQUENTIAL) -> Any:
    runs_a, runs_b = _rounds()
    return run_rounds(
        lambda i: ((runs_a[i][key], runs_b[i][key]), 20.0),
        plan,
        budget_s=len(runs_a) * 20.0 - 1,
        min_effect=0.05,
    )


def bench_doc() -> dict[str, Any]:
    return bench_result(_subject("a"), _rounds()[0], OPTS, None, {"bytes": 1, "files": 1}).to_json()


def compare_doc() -> dict[str, Any]:
    runs_a, runs_b = _rounds()
    a, b = _subject("a"), _subject("b")
    m = Measured(outcome=_outcome(), plan=SEQUENTIAL, key="chunk_s", opts=OPTS, repeat=None, time_s=300.0,
                 min_effect=0.05, load=[1.2, 1.4], cpus=2)  # fmt: skip
    sa = Side(subject=a, facts=FACTS, bench=bench_result(a, runs_a, OPTS, None, None))
    sb = Side(subject=b, facts=FACTS, bench=bench_result(b, runs_b, OPTS, None, None))
    return comparison(sa, sb, m).to_json()


def bisect_doc() -> dict[str, Any]:
    whole = step_record(1, ["onnxruntime"], "B", _outcome("startup_s", fixed_plan(6)))
    step = replace(whole, call="slower")
    counts = Counts(tests=1, runs=12)
    culprits = (culprit({"name": "onnxruntime", "version": "1.20.0"}, [], step),)
    undecided = (Undecided(packages=("julius",), verdict="inconclusive"),)
    return Bisection(
        a=_subject("a").describe(), b=_subject("b").describe(), metric="startup_s", threshold=0.05, repeat=6,
        mode="fixed: 6 rounds per test", extras=(("onnxruntime", "1.20.0"),), removed_in_b=(),
        b_vs_a=step, steps=(step,), counts=counts, culprits=culprits, undecided=undecided,
        conclusion=conclusion("startup_s", step, culprits, undecided, counts),
    ).to_json()  # fmt: skip


def tune_doc() -> dict[str, Any]:
    runs_a, runs_b = _rounds()
    base = Settings(threads=2, interop_threads=1, matmul_precision="highest")
    rows = (
        Candidate(settings=replace(base, threads=1), runs=tuple(r["separation_s"] for r in runs_b)),
        Candidate(settings=base, runs=tuple(r["separation_s"] for r in runs_a)),
    )
    return Tuning(
        runtime=_subject("a").describe(), current=base, best=best_of("threads", "a", rows),
        stages={"threads": rows, "interop_threads": rows, "matmul_precision": rows},
        gain=gain_of(_outcome("separation_s")), machine=Machine(cpus=2, machine="x86_64"),
        config_file="/tmp/a/runtime.json", note="a dist's records list the old runtime.json",
    ).to_json()  # fmt: skip


DOCS = {"bench": bench_doc, "compare": compare_doc, "bisect": bisect_doc, "tune": tune_doc}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_document_names_and_follows_its_published_schema(command: str) -> None:
    doc = json.loads(json.dumps(DOCS[command](), default=str))  # as --json prints it
    assert assert_follows_its_schema(doc) == command
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
    assert schema["$id"] == doc["schema"] == f"runtime-builder/{command}/1"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_renamed_top_level_key_fails(command: str) -> None:
    doc = json.loads(json.dumps(DOCS[command](), default=str))
    for key in [k for k in doc if k != "schema"]:
        renamed = {("renamed_" + k if k == key else k): v for k, v in doc.items()}
        assert schema_errors(renamed, command), f"{command}: renaming {key} went unnoticed"


@pytest.mark.parametrize(
    ("command", "path", "new"),
    [
        ("bench", ("runtime", "label"), "name"),
        ("bench", ("settings", "seconds"), "audio_seconds"),
        ("compare", ("decision", "ratio"), "b_over_a"),
        ("compare", ("a", "total_bytes"), "bytes"),
        ("compare", ("settings", "primary_metric"), "metric"),
        ("bisect", ("counts", "tests"), "steps"),
        ("bisect", ("b_vs_a", "slower"), "is_slower"),
        ("tune", ("gain", "decided"), "settled"),
        ("tune", ("best", "interop_threads"), "interop"),
    ],
)
def test_a_renamed_nested_key_fails(command: str, path: tuple[str, ...], new: str) -> None:
    doc = copy.deepcopy(json.loads(json.dumps(DOCS[command](), default=str)))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[new] = parent.pop(path[-1])
    assert schema_errors(doc, command), f"{command}: renaming {'.'.join(path)} went unnoticed"


def test_a_budget_check_and_a_comparisons_verdict_are_typed() -> None:
    doc = bench_doc()
    doc["budget"]["checks"] = [{"budget": "max-size-mb", "limit": 500, "measured": "612 MB", "ok": False}]
    assert any("612 MB" in e for e in schema_errors(doc, "bench"))
    doc = compare_doc()
    doc["performance"]["chunk_s"]["verdict"]["call"] = "slowish"
    assert schema_errors(doc, "compare")

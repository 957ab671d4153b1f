"""The contract between builder and stems: what each side writes and accepts follows the schemas
in runtime_entry/contract/, and a drift on either side fails."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from builder import contract as builder_contract
from builder.errors import CheckError
from builder.profile import load_all
from builder.program.entry import runtime_config
from builder.stages.check import compare as check_compare
from runtime_entry import contract as stems_contract

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = (
    "runtime",
    "selftest",
    "bench",
    "worker-ready",
    "worker-answer",
    "probe",
    "fingerprint",
    "runtime-doctor",
)


def stems(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The real program from this checkout, with builder's environment rule."""
    base = builder_contract.runtime_environment({"PYTHONPATH": str(ROOT), **(env or {})}, os.environ)
    return subprocess.run(
        [sys.executable, "-m", "runtime_entry", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def selftest_doc() -> dict[str, Any]:
    proc = stems("selftest", "--json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


@pytest.fixture(scope="module")
def bench_doc() -> dict[str, Any]:
    proc = stems("bench", "--json", "--model", "tiny", "--seconds", "0.5", "--no-warmup")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


@pytest.fixture(scope="module")
def ready_doc() -> dict[str, Any]:
    env = builder_contract.runtime_environment({"PYTHONPATH": str(ROOT)}, os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime_entry", "worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    proc.stdin.close()
    proc.stdout.close()
    proc.wait(timeout=120)
    doc: dict[str, Any] = json.loads(line)
    return doc


@pytest.fixture(scope="module")
def doctor_doc() -> dict[str, Any]:
    proc = stems("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_stems_doctor_output_follows_its_schema(doctor_doc: dict[str, Any]) -> None:
    assert builder_contract.violations(doctor_doc, "runtime-doctor") == []
    assert doctor_doc["figures"]["calibration"]["total_s"] > 0 and doctor_doc["redacted"] is True
    # a renamed key fails: the schema forbids what it does not name
    renamed = {**doctor_doc, "cause": doctor_doc["causes"]}
    del renamed["causes"]
    assert builder_contract.violations(renamed, "runtime-doctor")


def test_a_fingerprint_follows_its_schema() -> None:
    code = "import json, torch; from runtime_doctor import inprocess; print(json.dumps(inprocess.make_fingerprint({})))"
    env = builder_contract.runtime_environment({"PYTHONPATH": str(ROOT)}, os.environ)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert builder_contract.violations(doc, "fingerprint") == [] and doc["calibration"]["total_s"] > 0


def test_the_schemas_are_valid_json_schema() -> None:
    for name in SCHEMAS:
        jsonschema.Draft202012Validator.check_schema(builder_contract.load(name))


def test_selftest_output_follows_its_schema(selftest_doc: dict[str, Any]) -> None:
    assert builder_contract.violations(selftest_doc, "selftest") == []
    assert stems_contract.problems(selftest_doc, stems_contract.load("selftest")) == []


def test_bench_output_follows_its_schema(bench_doc: dict[str, Any]) -> None:
    assert builder_contract.violations(bench_doc, "bench") == []


def test_the_worker_ready_line_follows_its_schema(ready_doc: dict[str, Any]) -> None:
    assert ready_doc["type"] == "ready"
    assert builder_contract.violations(ready_doc, "worker-ready") == []


def test_every_profile_writes_a_runtime_json_that_stems_accepts(root: Path, tmp_path: Path) -> None:
    for profile in load_all(root / "profiles"):
        cfg = runtime_config(profile)
        assert builder_contract.violations(cfg, "runtime") == [], profile.name
        assert stems_contract.problems(cfg, stems_contract.load("runtime")) == [], profile.name
    # and the program really starts with one (the minimal Linux profile's)
    path = tmp_path / "runtime.json"
    path.write_text(json.dumps(runtime_config(load_all(root / "profiles")[4])))
    proc = stems("selftest", "--json", env={"STEMS_RUNTIME_CONFIG": str(path)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config_source"] == str(path)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"threads": 2, "interop_threads": 1, "matmul_precision": "high", "speed": "max"}, "speed"),
        ({"threads": "two", "interop_threads": 1, "matmul_precision": "high"}, "threads"),
        ({"threads": 2, "interop_threads": 1, "matmul_precision": "fast"}, "matmul_precision"),
        ({"threads": 2, "interop_threads": 0, "matmul_precision": "high"}, "interop_threads"),
        (
            {"threads": 2, "interop_threads": 1, "matmul_precision": "high", "env": {"OMP_NUM_THREADS": "1"}},
            "env.OMP_NUM_THREADS",
        ),
        ([1, 2, 3], "top level"),
    ],
)
def test_stems_refuses_a_runtime_json_that_breaks_the_schema(tmp_path: Path, config: Any, key: str) -> None:
    path = tmp_path / "runtime.json"
    path.write_text(json.dumps(config))
    proc = stems("selftest", "--json", env={"STEMS_RUNTIME_CONFIG": str(path)})
    err = assert_one_line_error_stems(proc, 2)
    assert key in err and str(path) in err
    # builder's validator refuses the same document
    assert builder_contract.violations(config, "runtime")


def assert_one_line_error_stems(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("stems: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _drifted(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The ways a program drifts: a key renamed, a key removed, a nested key renamed."""
    renamed = copy.deepcopy(doc)
    renamed["matmul_precision_mode"] = renamed.pop("matmul_precision")
    removed = copy.deepcopy(doc)
    removed.pop("threads")
    nested = copy.deepcopy(doc)
    first = next(iter(nested["threads"]))
    nested["threads"][first + "_count"] = nested["threads"].pop(first)
    return [renamed, removed, nested]


def test_a_drifted_selftest_fails_both_validators(selftest_doc: dict[str, Any]) -> None:
    for doc in _drifted(selftest_doc):
        assert builder_contract.violations(doc, "selftest")
        assert stems_contract.problems(doc, stems_contract.load("selftest"))


def test_a_drifted_bench_document_fails_both_validators(bench_doc: dict[str, Any]) -> None:
    for doc in _drifted(bench_doc):
        assert builder_contract.violations(doc, "bench")
        assert stems_contract.problems(doc, stems_contract.load("bench"))


def test_builders_check_stage_refuses_a_selftest_that_breaks_the_schema(selftest_doc: dict[str, Any]) -> None:
    for doc in _drifted(selftest_doc):
        with pytest.raises(CheckError, match=r"does not follow selftest\.schema\.json"):
            builder_contract.require(doc, "selftest", what="stems selftest")
    builder_contract.require(selftest_doc, "selftest", what="stems selftest")  # the real one passes


def test_check_compares_only_keys_the_schema_requires(selftest_doc: dict[str, Any], root: Path) -> None:
    # every key builder's check reads is one the schema requires, so a conforming report can be checked
    required = set(builder_contract.load("selftest")["required"])
    assert {"threads", "matmul_precision", "env", "versions", "openmp", "matmul_ok"} <= required
    want = {"threads": 2, "interop": 1, "matmul_precision": "highest", "env": {}, "torch": None}
    assert isinstance(check_compare(selftest_doc, want), list)


def test_the_two_validators_agree_on_runtime_json() -> None:
    schema = stems_contract.load("runtime")
    cases: list[Any] = [
        {"threads": "auto", "interop_threads": 2, "matmul_precision": "high"},
        {
            "threads": 4,
            "interop_threads": 1,
            "matmul_precision": "highest",
            "env": {"KMP_BLOCKTIME": "1"},
            "profile": "p",
        },
        {"threads": 0, "interop_threads": 1, "matmul_precision": "high"},
        {"threads": True, "interop_threads": 1, "matmul_precision": "high"},
        {"threads": 2, "interop_threads": 1.5, "matmul_precision": "high"},
        {"threads": 2, "interop_threads": 1, "matmul_precision": "high", "env": {"A": 1}},
        {"threads": 2, "interop_threads": 1, "matmul_precision": "high", "env": {"MKL_NUM_THREADS": "1"}},
        {"threads": 2, "interop_threads": 1, "matmul_precision": "high", "tuned": {"gain": 1.1}},
        {"threads": 2, "matmul_precision": "high"},
        "runtime",
        None,
    ]
    for case in cases:
        assert (not builder_contract.violations(case, "runtime")) == (
            not stems_contract.problems(case, schema)
        ), case


def test_the_shared_constants_are_one(root: Path) -> None:
    shared = json.loads((root / "runtime_entry/contract/shared.json").read_text())
    assert builder_contract.PRECISIONS == stems_contract.PRECISIONS == tuple(shared["precisions"])
    assert builder_contract.CONFIG_NAME == stems_contract.CONFIG_NAME == shared["config_name"]
    for name in ("runtime", "selftest", "bench", "worker-ready"):
        schema = builder_contract.load(name)
        assert schema["properties"]["matmul_precision"]["enum"] == shared["precisions"], name
    families = builder_contract.load("selftest")["properties"]["openmp"]["items"]["properties"]["family"][
        "enum"
    ]
    assert families == [f["name"] for f in shared["openmp_families"]]
    thread_vars = builder_contract.load("runtime")["properties"]["env"]["propertyNames"]["not"]["enum"]
    assert thread_vars == shared["thread_env"]


def test_builder_and_stems_name_the_same_openmp_files_alike() -> None:
    from builder.openmp.model import FAMILY_NAMES, family_of
    from runtime_entry.openmp_loaded import family

    names = ["libgomp.so.1", "libgomp-e985bcbb.so.1.0.0", "libiomp5.dylib", "libiomp5md.dll", "libomp.dylib",
             "libomp140.x86_64.dll", "vcomp140.dll", "vcomp140d.dll", "libompitrace.so", "libgomp.py"]  # fmt: skip
    for name in names:
        fid = family_of(name)
        assert (FAMILY_NAMES[fid] if fid else None) == family(f"/x/{name}"), name


def test_the_freeze_bundles_the_contract_folder(tmp_path: Path) -> None:
    from builder.contract import FOLDER
    from builder.profile import load_profile
    from builder.stages.freeze import plan_freeze

    root = Path(__file__).resolve().parents[2]
    profile = load_profile("minimal-linux-x86_64", root / "profiles")
    spec = plan_freeze(profile, tmp_path, root, tmp_path / "work").files["stems.spec"]
    assert f"[{str(FOLDER)!r}, 'runtime_entry/contract']" in spec


def test_a_measured_runtime_that_drifts_is_reported_failed_with_the_violation(tmp_path: Path) -> None:
    from builder.measure.take.runs import RunOptions, measure_once
    from builder.measure.take.subject import Subject

    # a "runtime" whose selftest says `interop_threads` where the contract says `interop`
    program = tmp_path / "drifted.py"
    program.write_text(
        "import json, sys\n"
        f"doc = json.loads({json.dumps(json.dumps(_SELFTEST_EXAMPLE))})\n"
        "doc['threads']['interop_threads'] = doc['threads'].pop('interop')\n"
        "print(json.dumps(doc))\n"
    )
    rt = Subject(
        label="drifted", kind="dist", path=tmp_path, argv=(sys.executable, str(program)), importtime=False
    )
    run = measure_once(rt, RunOptions(separation=False, timeout=60, stall=30))
    assert "does not follow selftest.schema.json" in run["failed"]
    assert "interop" in run["failed"]


_SELFTEST_EXAMPLE: dict[str, Any] = {
    "program": "stems",
    "version": "0.1.0",
    "frozen": True,
    "executable": "/x/stems",
    "platform": {"system": "Linux", "machine": "x86_64"},
    "profile": None,
    "config_source": "defaults",
    "versions": {"python": "3.11.7", "torch": "2.13.0+cpu", "numpy": "2.4.6"},
    "threads": {"requested": 2, "at_import": 2, "torch": 2, "interop": 1},
    "matmul_precision": "highest",
    "env": {},
    "openmp": [],
    "threadpools": [
        {
            "user_api": "openmp",
            "internal_api": "openmp",
            "prefix": "libgomp",
            "filepath": "/x/libgomp.so.1",
            "version": None,
            "num_threads": 2,
        },
    ],
    "matmul_ok": True,
    "torch_import_seconds": 0.5,
}


def test_the_example_selftest_conforms() -> None:
    assert builder_contract.violations(_SELFTEST_EXAMPLE, "selftest") == []


def test_a_per_machine_override_may_set_only_the_threads(tmp_path: Path) -> None:
    path = tmp_path / "runtime.json"
    path.write_text(json.dumps({"threads": 1}))
    proc = stems("selftest", "--json", env={"STEMS_RUNTIME_CONFIG": str(path)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["threads"]["torch"] == 1
    assert builder_contract.violations({"threads": 1}, "runtime") == []


def test_a_program_without_torch_gets_a_fingerprint_without_calibration() -> None:
    # the hook never loads torch into a program that did not (a `--help` check command)
    code = "import json, sys; from runtime_doctor import inprocess; print(json.dumps(inprocess.make_fingerprint({}))); print('torch' in sys.modules)"
    env = builder_contract.runtime_environment({"PYTHONPATH": str(ROOT)}, os.environ)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc, loaded = proc.stdout.splitlines()
    assert builder_contract.violations(json.loads(doc), "fingerprint") == [] and loaded == "False"
    assert json.loads(doc)["calibration"] is None

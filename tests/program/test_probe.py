"""The probe: a program that knows nothing of runtime-builder reports what it ran with.

The runtime hook's text (what the freeze writes) runs in front of a plain torch script, in one
namespace as PyInstaller runs hooks and the program, in the venv that has CPU torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.contract import violations
from builder.program.entry import hook_text
from builder.stages.probe import compare_probe, openmp_of

# A program of its own: it defines names the probe also uses, and never mentions us.
PROGRAM = """\
import sys

import numpy
import torch

def report():
    return "the program's own report"

install = _state = None
a = torch.randn(128, 128)
print(report(), float((a @ a).abs().sum()) > 0)
sys.exit(0)
"""


def _run(
    tmp_path: Path,
    settings: dict[str, object] | None,
    *,
    probe: bool = True,
    bundled: bool = False,
    extra: dict[str, str] | None = None,
) -> dict:
    launch = tmp_path / "launch.py"
    launch.write_text(hook_text(bundled=bundled) + PROGRAM)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "STEMS_", "RUNTIME_BUILDER"))
    }
    env["OMP_NUM_THREADS"] = "1"  # inherited: the classic single-thread runtime the hook must override
    if settings is not None:
        (tmp_path / "runtime.json").write_text(json.dumps(settings))
        env["STEMS_RUNTIME_CONFIG"] = str(tmp_path / "runtime.json")
    if probe:
        env["RUNTIME_BUILDER_PROBE"] = str(tmp_path / "probe.json")
    env.update(extra or {})
    proc = subprocess.run([sys.executable, launch], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "the program's own report True" in proc.stdout
    return json.loads((tmp_path / "probe.json").read_text()) if probe else {}


SETTINGS = {"profile": "p", "threads": 2, "interop_threads": 1, "matmul_precision": "high",
            "env": {"KMP_BLOCKTIME": "1"}}  # fmt: skip
WANT = {"threads": 2, "interop": 1, "matmul_precision": "high",
        "env": {"KMP_BLOCKTIME": "1", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}, "torch": None}  # fmt: skip


def test_a_program_that_knows_nothing_of_us_gets_a_probe_that_follows_the_contract(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    probe = _run(tmp_path, SETTINGS)
    assert violations(probe, "probe") == []
    assert probe["torch_imported"] and probe["settings_applied_by"] == "probe"
    # the inherited OMP_NUM_THREADS=1 lost: 2 threads right after torch's import, and after
    assert probe["threads"] == {"requested": 2, "at_import": 2, "torch": 2, "interop": 1}
    assert probe["matmul_precision"] == "high" and probe["env"]["KMP_BLOCKTIME"] == "1"
    assert [o["family"] for o in openmp_of(probe)] == ["GNU libgomp"]
    assert all(p["num_threads"] == 2 for p in probe["threadpools"] if p["user_api"] == "openmp")
    imports = probe["imports"]
    assert imports["torch_s"] > 0 and imports["by_package"]["torch"] > 0 and "numpy" in imports["by_package"]
    assert imports["modules"] > 100 and imports["slowest"][0]["self_s"] > 0
    assert compare_probe(probe, WANT) == []


def test_the_check_names_what_differs_from_the_profile(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    # (torch caps the threads at import at the cores it finds: one thread is what any machine shows)
    probe = _run(tmp_path, {**SETTINGS, "threads": 1})
    problems = compare_probe(probe, WANT)
    assert any("threads at torch import 1 != 2" in p for p in problems), problems
    assert any("OMP_NUM_THREADS='1'" in p for p in problems), problems


def test_without_the_variable_nothing_is_written_and_the_program_runs_as_before(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    _run(tmp_path, SETTINGS, probe=False)
    assert not (tmp_path / "probe.json").exists()


def test_a_probe_that_breaks_the_contract_is_refused() -> None:
    bad = {"probe": 1, "threads": {"at_import": 0}}
    assert violations(bad, "probe")


def test_stems_settings_variables_outrank_runtime_json_as_for_stems(tmp_path: Path) -> None:
    """How `builder tune` tries a candidate on any program without touching its files."""
    pytest.importorskip("torch")
    probe = _run(tmp_path, SETTINGS, extra={"STEMS_THREADS": "1", "STEMS_MATMUL_PRECISION": "medium"})
    assert probe["threads"] == {"requested": 1, "at_import": 1, "torch": 1, "interop": 1}
    assert probe["matmul_precision"] == "medium" and probe["env"]["OMP_NUM_THREADS"] == "1"
    assert probe["config_source"].endswith("runtime.json + STEMS_THREADS, STEMS_MATMUL_PRECISION")


def test_the_hooks_names_are_the_contracts() -> None:
    """The hook is stdlib-only text (it cannot read the contract): its copies must agree."""
    from builder import contract
    from builder.program import probe_hook

    assert probe_hook.CONFIG_ENV == contract.CONFIG_ENV and probe_hook.CONFIG_NAME == contract.CONFIG_NAME
    assert probe_hook.SETTINGS_ENV == contract.SETTINGS_ENV
    assert list(probe_hook.THREAD_ENV) == contract.SHARED["thread_env"]
    assert list(probe_hook.REPORTED_ENV) == contract.SHARED["reported_env"]

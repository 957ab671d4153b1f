"""A CPU profile's lock holds no CUDA build: torchvision/torchaudio from PyPI on Linux, `nvidia-*`,
`+cu` labels; refused with one line, like a from-wheelhouse torch without its label."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder

from builder.errors import ResolutionError
from builder.stages.cpu_builds import cuda_builds

CPU = {"torch": "2.13.0+cpu", "numpy": "2.3.0"}


@pytest.mark.parametrize(
    ("pins", "linux", "flagged"),
    [
        ({"torchvision": "0.28.0"}, True, ["torchvision"]),
        ({"torchaudio": "2.11.0"}, True, ["torchaudio"]),
        ({"torchvision": "0.28.0+cpu", "torchaudio": "2.13.0+cpu"}, True, []),
        ({"nvidia-cublas-cu12": "12.8.4.1", "triton": "3.5.0"}, False, ["nvidia-cublas-cu12"]),
        ({"torchvision": "0.28.0+cu128"}, False, ["torchvision"]),
        ({"torchvision": "0.28.0"}, False, []),  # PyPI's Windows and macOS builds are CPU builds
    ],
)
def test_cuda_builds_in_a_cpu_lock_are_named(pins: dict[str, str], linux: bool, flagged: list[str]) -> None:
    assert [name for name, _ in cuda_builds({**CPU, **pins}, linux=linux)] == flagged


def test_a_lock_whose_torch_is_not_the_cpu_build_is_not_judged() -> None:
    # a profile that asks for CUDA torch (or a macOS torch, which has no label) is not a CPU profile
    assert (
        cuda_builds({"torch": "2.13.0", "torchvision": "0.28.0", "nvidia-nccl-cu12": "2.27"}, linux=True)
        == []
    )


@pytest.mark.slow
def test_locking_pypis_torchvision_beside_cpu_torch_fails_in_one_line(tmp_path: Path) -> None:
    if not os.environ.get("PIP_FIND_LINKS"):
        pytest.fail("PIP_FIND_LINKS must name the wheelhouse that holds CPU torch")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/cpu.toml").write_text(
        'description = "cpu"\n[target]\nname = "linux-x86_64"\npython = "3.11"\n[packages]\n'
        'requirements = ["torch==2.13.0+cpu", "torchvision==0.28.0"]\nfrom-wheelhouse = ["torch"]\n'
    )
    proc = run_builder("lock", "--profile", "cpu", root=tmp_path)
    assert_one_line_error(
        proc, ResolutionError.exit_code, "cpu.toml", "CUDA build", "torchvision 0.28.0", "+cpu"
    )
    assert not (tmp_path / "locks/cpu.lock").exists()

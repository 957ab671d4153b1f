"""The FLOP count of a model and chunk is the model's, the same on every host (issue 22, point 9).

Two ways for small presets: torch's FlopCounterMode (completed for the kernels it counts as
zero, benchmarks/flop_count.py) on whichever path this host takes, and the closed form from
the config (runtime_entry/models/flops.py). Under matmul precision "high", a CPU with native
bf16 runs oneDNN's fused linear, which the plain counter sees as zero: the case that once
reported 2815.8 GFLOP per bs_roformer_4stem chunk on one host and 5822.1 on another.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from runtime_entry.models import build_model, resolve_spec
from runtime_entry.models.flops import flops_per_chunk

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from flop_count import counted_flops

CHUNK = 4096  # samples: a short chunk keeps each count well under a second


@pytest.fixture
def precision(request: pytest.FixtureRequest):
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(request.param)
    yield request.param
    torch.set_float32_matmul_precision(before)


# slow: torch's FlopCounterMode takes about 4 s to start (once per process); each count is ~0.2 s
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["highest", "high"], indirect=True)
@pytest.mark.parametrize("preset", ["tiny", "tiny_mel"])
def test_the_counter_and_the_closed_form_agree(preset: str, precision: str) -> None:
    spec = resolve_spec(preset)
    model = build_model(spec)
    x = torch.randn(1, spec.audio_channels, CHUNK, generator=torch.Generator().manual_seed(0))
    assert counted_flops(model, x) == flops_per_chunk(spec, CHUNK)


def test_the_closed_form_grows_with_the_chunk_and_the_stems() -> None:
    spec = resolve_spec("tiny")
    assert flops_per_chunk(spec, 2 * CHUNK) > flops_per_chunk(spec, CHUNK)
    fewer = replace(spec, params={**spec.params, "num_stems": 1})
    assert flops_per_chunk(fewer) < flops_per_chunk(spec)


def test_the_full_model_is_the_float32_hosts_figure() -> None:
    # 5822.1 GFLOP: what the counter gave for bs_roformer_4stem on a host without native bf16,
    # where every matrix product runs as an operator the counter knows (docs/PERFORMANCE.md).
    assert round(flops_per_chunk(resolve_spec("bs_roformer_4stem")) / 1e9, 1) == 5822.1

"""Checkpoints load weights-only and strictly."""

from __future__ import annotations

import collections

import pytest
import torch

from runtime_entry.checkpoint import load_checkpoint
from runtime_entry.errors import CheckpointError
from runtime_entry.models import build_model, resolve_spec


class NotATensor:
    """Pickling an instance of this needs code execution to load."""


def trained_like_state(seed: int = 7) -> collections.OrderedDict:
    """A state dict in the community layout with weights unlike the seeded defaults."""
    model = build_model(resolve_spec("tiny"), seed=seed)
    return model.state_dict()


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model_state_dict", "state"])
def test_checkpoint_in_community_layout_loads_strictly_and_gives_identical_output(tmp_path, wrapper):
    source = build_model(resolve_spec("tiny"), seed=7)
    state = source.state_dict()
    path = tmp_path / "model.ckpt"
    torch.save(state if wrapper is None else {wrapper: state, "epoch": 3}, path)
    model = build_model(resolve_spec("tiny"))
    info = load_checkpoint(model, path)
    assert info.tensors == len(state) and info.wrapper == wrapper and len(info.sha256) == 64
    x = torch.randn(1, 2, resolve_spec("tiny").chunk_size)
    with torch.inference_mode():
        assert torch.equal(model(x), source(x))


def test_checkpoint_with_missing_and_unexpected_keys_names_the_first_ones(tmp_path):
    state = trained_like_state()
    state.pop("final_norm.gamma")
    state["band_split.extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.ckpt"
    torch.save(state, path)
    with pytest.raises(
        CheckpointError,
        match=r"1 missing \(first: final_norm.gamma\); 1 unexpected \(first: band_split.extra.weight\)",
    ):
        load_checkpoint(build_model(resolve_spec("tiny")), path)


def test_checkpoint_of_another_architecture_reports_the_shape(tmp_path):
    state = trained_like_state()
    state["final_norm.gamma"] = torch.ones(64)
    torch.save(state, tmp_path / "shape.ckpt")
    with pytest.raises(
        CheckpointError, match=r"final_norm.gamma has shape \(64,\), the model expects \(32,\)"
    ):
        load_checkpoint(build_model(resolve_spec("tiny")), tmp_path / "shape.ckpt")


def test_checkpoint_that_needs_pickle_code_execution_is_refused(tmp_path):
    path = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": trained_like_state(), "hparams": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="refused: loading it would execute pickled code"):
        load_checkpoint(build_model(resolve_spec("tiny")), path)


def test_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(b"not a zip or a pickle" * 10)
    with pytest.raises(CheckpointError, match=r"not a readable PyTorch checkpoint|refused"):
        load_checkpoint(build_model(resolve_spec("tiny")), path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(build_model(resolve_spec("tiny")), tmp_path / "missing.ckpt")

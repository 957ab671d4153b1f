"""Separation models. `spec` is pure Python; `build_model` imports torch when called."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import PRESETS, ModelSpec, resolve_spec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["PRESETS", "ModelSpec", "build_model", "resolve_spec"]

DEFAULT_SEED = 20240


def build_model(spec: ModelSpec, *, seed: int = DEFAULT_SEED) -> nn.Module:
    """The model of `spec` with seeded random weights, in eval mode (load a checkpoint after)."""
    import torch

    from .roformer import MODEL_CLASSES

    params = dict(spec.params)
    dim = params.pop("dim")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = MODEL_CLASSES[spec.kind](dim, **params)
    finally:
        torch.random.set_rng_state(state)
    return model.eval()

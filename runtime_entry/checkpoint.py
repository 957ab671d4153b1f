"""Load community checkpoints safely and strictly.

`torch.load(weights_only=True)`: tensors and plain containers only; a file whose
unpickling would run code is refused. The weights may be wrapped as
`state_dict`, `model_state_dict` or `state` (MSST, Lightning, HTDemucs habits).
Keys must match the model exactly; a mismatch names the first missing and
unexpected keys instead of loading a half-initialised model.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError
from .files import file_problem, problem_text

WRAPPERS = ("state_dict", "model_state_dict", "state")
SHOWN = 3


@dataclass(frozen=True, kw_only=True)
class LoadedCheckpoint:
    path: str
    sha256: str
    tensors: int
    wrapper: str | None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# what torch.save writes: a zip archive (since torch 1.6), or a bare pickle (protocol >= 2) before
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_MAGIC = b"\x80"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _check_file(path: Path) -> None:
    """Refuse what is not a checkpoint file before torch reads a byte (a FIFO read would block)."""
    if (problem := file_problem(path)) is not None:
        text = problem_text(
            problem, missing="checkpoint not found", holds="a checkpoint is a .ckpt/.pt/.pth file"
        )
        raise CheckpointError(f"{path}: {text}")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(ZIP_MAGIC))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint: {exc.strerror or exc}") from None
    if not head:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    if not (head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_MAGIC)):
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (expected a zip archive or a pickle, found bytes {head!r})"
        )


def check_finite(state: Mapping[str, torch.Tensor], where: str) -> None:
    """NaN or inf weights make silent or garbage stems: refused at load, naming the first tensor."""
    for key, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            finite = torch.isfinite(tensor)
            if not bool(finite.all()):
                bad = int((~finite).sum())
                raise CheckpointError(
                    f"{where}: {key} holds {bad} NaN or infinite value(s) of {tensor.numel()}: "
                    "the checkpoint is damaged (or diverged in training); use another one"
                )


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    _check_file(path)
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = _first_line(exc)
        raise CheckpointError(
            f"{path}: refused: loading it would execute pickled code (weights-only load failed: {first[:200]})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - zip/pickle readers raise many types on junk input
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: {_first_line(exc)}") from None
    wrapper = None
    if isinstance(obj, Mapping):
        for key in WRAPPERS:
            if key in obj and isinstance(obj[key], Mapping):
                obj, wrapper = obj[key], key
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: expected a state dict (a mapping of names to tensors)")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entry {bad[0]!r} is not a tensor; is this a model checkpoint?")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state, wrapper


def check_keys(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:SHOWN])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:SHOWN])})")
        raise CheckpointError(f"{where}: checkpoint does not match the model: {'; '.join(parts)}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{where}: checkpoint does not match the model: {key} has shape "
                f"{tuple(state[key].shape)}, the model expects {tuple(tensor.shape)}"
            )


def load_checkpoint(model: nn.Module, path: str | Path) -> LoadedCheckpoint:
    path = Path(path)
    state, wrapper = read_state_dict(path)
    check_keys(model, state, str(path))
    check_finite(state, str(path))
    model.load_state_dict(state, strict=True)
    return LoadedCheckpoint(path=str(path), sha256=_sha256(path), tensors=len(state), wrapper=wrapper)

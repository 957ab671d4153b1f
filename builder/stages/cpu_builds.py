"""A CPU profile's lock must hold no CUDA build: judged from the pins alone (pure).

A profile is a CPU one when its torch carries the `+cpu` label (the wheelhouse's or the PyTorch
index's CPU build). PyPI's Linux torchvision and torchaudio are built against PyPI's CUDA torch
(their wheels carry no label there) and fail to load beside the CPU one; `nvidia-*` packages are
CUDA's libraries, hundreds of MB that only a CUDA torch loads; a `+cu…`/`+rocm…` label is a GPU build.
"""

from __future__ import annotations

from collections.abc import Mapping

from packaging.version import InvalidVersion, Version

# Made against torch by PyTorch: on PyPI's Linux wheels, against its CUDA build.
PAIRED_WITH_TORCH = ("torchvision", "torchaudio")


def _local(version: str) -> str:
    try:
        return Version(version).local or ""
    except InvalidVersion:
        return ""


def is_cpu_lock(pins: Mapping[str, str]) -> bool:
    """Whether the lock's torch is a CPU build (`+cpu`), the mark of a CPU profile."""
    return _local(pins.get("torch", "")).startswith("cpu")


def cuda_builds(pins: Mapping[str, str], *, linux: bool) -> list[tuple[str, str]]:
    """(package, why) for each pin of a CPU lock that is a CUDA build; [] for any other lock."""
    if not is_cpu_lock(pins):
        return []
    found = []
    for name, version in sorted(pins.items()):
        local = _local(version)
        if local.startswith(("cu", "rocm")):
            found.append((name, f"{name} {version} is a GPU build (+{local})"))
        elif name.startswith("nvidia-"):
            found.append((name, f"{name} {version} is a CUDA library, loaded only by a CUDA torch"))
        elif name in PAIRED_WITH_TORCH and linux and not local:
            found.append((name, f"{name} {version} is PyPI's Linux build, made against PyPI's CUDA torch"))
    return found

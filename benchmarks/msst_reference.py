"""Load the reference roformer classes: msst's own (the main reference) and the copy shipped
in `audio-separator` (the second: it is what apps ship).

Runs only in the benchmark environment (.bench/msst-venv); the project never imports
this. Both packages' own __init__ modules pull in far more than the models (msst: its
training and inference stacks; audio-separator: onnxruntime and friends), so the parent
packages are registered as bare namespaces and only the roformer modules (and the small
helpers they import) are executed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path


def _bare_package(name: str, path: Path) -> None:
    if name in sys.modules:
        return
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]
    sys.modules[name] = mod


def _root(package: str, dist: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"{dist} is not installed in this environment (see benchmarks/requirements-msst.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def load_msst_classes() -> dict[str, type]:
    """msst's BSRoformer and MelBandRoformer (msst/models/bs_roformer/)."""
    root = _root("msst", "msst")
    _bare_package("msst", root)
    _bare_package("msst.models", root / "models")
    _bare_package("msst.models.bs_roformer", root / "models" / "bs_roformer")
    bs = importlib.import_module("msst.models.bs_roformer.bs_roformer")
    mel = importlib.import_module("msst.models.bs_roformer.mel_band_roformer")
    return {"bs_roformer": bs.BSRoformer, "mel_band_roformer": mel.MelBandRoformer}


def load_audio_separator_classes() -> dict[str, type]:
    """The MSST copy inside audio-separator (separator/uvr_lib_v5/roformer/)."""
    root = _root("audio_separator", "audio-separator")
    _bare_package("audio_separator", root)
    _bare_package("audio_separator.separator", root / "separator")
    _bare_package("audio_separator.separator.uvr_lib_v5", root / "separator" / "uvr_lib_v5")
    bs = importlib.import_module("audio_separator.separator.uvr_lib_v5.roformer.bs_roformer")
    mel = importlib.import_module("audio_separator.separator.uvr_lib_v5.roformer.mel_band_roformer")
    return {"bs_roformer": bs.BSRoformer, "mel_band_roformer": mel.MelBandRoformer}


def version(dist: str) -> str:
    try:
        return dist_version(dist)
    except PackageNotFoundError:
        return "not installed"

"""Load the MSST roformer classes as shipped in the `audio-separator` package.

Runs only in the benchmark environment (.bench/msst-venv); the project never
imports this. The package's own __init__ pulls in onnxruntime and friends, so
the parent packages are registered as bare namespaces and only the roformer
modules (and the small device helper they use) are executed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def _bare_package(name: str, path: Path) -> None:
    if name in sys.modules:
        return
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]
    sys.modules[name] = mod


def load_classes() -> dict[str, type]:
    spec = importlib.util.find_spec("audio_separator")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("audio-separator is not installed in this environment")
    root = Path(list(spec.submodule_search_locations)[0])
    _bare_package("audio_separator", root)
    _bare_package("audio_separator.separator", root / "separator")
    _bare_package("audio_separator.separator.uvr_lib_v5", root / "separator" / "uvr_lib_v5")
    bs = importlib.import_module("audio_separator.separator.uvr_lib_v5.roformer.bs_roformer")
    mel = importlib.import_module("audio_separator.separator.uvr_lib_v5.roformer.mel_band_roformer")
    return {"bs_roformer": bs.BSRoformer, "mel_band_roformer": mel.MelBandRoformer}


def version() -> str:
    from importlib.metadata import version as v

    return v("audio-separator")

"""Tiny real wheels, written by hand (a wheel is a zip with METADATA, WHEEL and RECORD).

`slowpoke` plants a slowdown in every process of the environment it is installed in:
its `slowpoke.pth` runs at interpreter start (site.py) and imports `slowpoke_hook`,
which sleeps. The innocent packages install modules that nothing imports.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

# Well above this machine's start-up noise: the base venv's start-up ranged 1.3-2.9 s within one
# CI run, where a 0.8 s sleep was called "same" (and bisect found no culprit).
SLEEP_SECONDS = 2.5


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    folder: Path, name: str, version: str, files: dict[str, str], requires: list[str] | None = None
) -> Path:
    stem = name.replace("-", "_")
    dist = f"{stem}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires or []
    )
    entries = {
        **files,
        f"{dist}/METADATA": meta,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    path = folder / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        record = []
        for arc, text in entries.items():
            data = text.encode()
            zf.writestr(arc, data)
            record.append(f"{arc},{_record_hash(data)},{len(data)}")
        record.append(f"{dist}/RECORD,,")
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


def slowpoke(folder: Path, seconds: float = SLEEP_SECONDS) -> Path:
    return make_wheel(
        folder,
        "slowpoke",
        "1.0",
        {
            "slowpoke.pth": "import slowpoke_hook\n",
            "slowpoke_hook.py": f"import time\ntime.sleep({seconds})\n",
        },
    )


def spinner(folder: Path) -> Path:
    """A thread that spins forever from interpreter start (holds the GIL half the time)."""
    return make_wheel(
        folder,
        "spinner",
        "1.0",
        {
            "spinner.pth": "import spinner_hook\n",
            "spinner_hook.py": "import threading\n\ndef _spin():\n    while True:\n        pass\n\n"
            "threading.Thread(target=_spin, daemon=True).start()\n",
        },
    )


def hang(folder: Path) -> Path:
    """Blocks every process at start: no output, no CPU time (like an OpenMP deadlock)."""
    return make_wheel(
        folder,
        "hangs",
        "1.0",
        {"hangs.pth": "import hangs_hook\n", "hangs_hook.py": "import time\ntime.sleep(3600)\n"},
    )


def innocents(folder: Path) -> list[Path]:
    return [
        make_wheel(folder, "innocent-alpha", "1.0", {"innocent_alpha.py": "X = 1\n"}),
        make_wheel(
            folder,
            "innocent-beta",
            "2.0",
            {"innocent_beta.py": "import innocent_gamma\n"},
            requires=["innocent-gamma"],
        ),
        make_wheel(folder, "innocent-gamma", "0.3", {"innocent_gamma.py": "Y = 2\n"}),
    ]

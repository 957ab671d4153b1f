"""`make check-repro`: build a profile twice from clean and name every file that differs.

Each build starts without the profile's venv and dist (uv's and PyInstaller's
tool caches stay: they are inputs, not outputs). Exit 0 only when both the
frozen folders and the archives are byte-identical.

    python scripts/check_repro.py [--profile P]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.repro import report  # noqa: E402
from builder.targets import host_target  # noqa: E402


def clean_build(profile: str, keep_as: Path) -> dict:
    shutil.rmtree(ROOT / "build" / profile, ignore_errors=True)
    shutil.rmtree(ROOT / "dist" / profile, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "builder", "build", "--profile", profile, "--json"],
                          cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"check-repro: build of {profile} failed (exit {proc.returncode})")
    result = json.loads(proc.stdout)
    shutil.rmtree(keep_as, ignore_errors=True)
    keep_as.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(ROOT / "dist" / profile, keep_as)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    target = host_target()
    ap.add_argument("--profile", default=f"minimal-{target.name if target else 'linux-x86_64'}")
    args = ap.parse_args()
    work = ROOT / ".repro"
    a = clean_build(args.profile, work / "a" / args.profile)
    b = clean_build(args.profile, work / "b" / args.profile)
    rep = report(work / "a" / args.profile, work / "b" / args.profile)
    same_archive = a["archive_sha256"] == b["archive_sha256"]
    for d in rep["files"]:
        print(f"DIFFERS  {d['path']}: {d['why']}")
    print(f"{rep['differing']} differing files of {a['files']}; archive "
          + ("identical" if same_archive else "differs") + f" ({a['archive_sha256']} vs {b['archive_sha256']})")
    shutil.move(work / "b" / args.profile, ROOT / "dist" / args.profile)  # leave a usable dist behind
    shutil.rmtree(work, ignore_errors=True)
    return 0 if rep["differing"] == 0 and same_archive else 1


if __name__ == "__main__":
    raise SystemExit(main())

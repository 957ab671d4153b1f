"""`make check-repro`: build a profile twice from clean and name every file that differs.

Each build starts from an empty work folder and output folder under .repro/
(so build/ and dist/ are left alone; uv's cache stays: it holds inputs, not
outputs). Both builds use the same paths, as two builds on one machine would.
Exit 0 only when both the frozen folders and the archives are byte-identical.

    python scripts/check_repro.py [--profile P]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.artifact.diff import report  # noqa: E402
from builder.targets import host_target  # noqa: E402


def clean_build(profile: str, work: Path, keep_as: Path) -> dict:
    shutil.rmtree(work / "build", ignore_errors=True)
    shutil.rmtree(work / "dist", ignore_errors=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "builder",
            "build",
            "--profile",
            profile,
            "--out",
            str(work / "dist"),
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BUILDER_WORK_DIR": str(work / "build")},
    )
    if proc.returncode != 0:
        raise SystemExit(f"check-repro: build of {profile} failed (exit {proc.returncode})")
    result = json.loads(proc.stdout)
    shutil.rmtree(keep_as, ignore_errors=True)
    keep_as.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(work / "dist" / profile, keep_as)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    target = host_target()
    ap.add_argument("--profile", default=f"minimal-{target.name if target else 'linux-x86_64'}")
    args = ap.parse_args()
    work = ROOT / ".repro"
    a = clean_build(args.profile, work, work / "a" / args.profile)
    b = clean_build(args.profile, work, work / "b" / args.profile)
    rep = report(work / "a" / args.profile, work / "b" / args.profile)
    same_archive = a["archive_sha256"] == b["archive_sha256"]
    for d in rep.files:
        print(f"DIFFERS  {d.path}: {d.why}")
    print(
        f"{len(rep.files)} differing files of {a['files']}; archive "
        + ("identical" if same_archive else "differs")
        + f" ({a['archive_sha256']} vs {b['archive_sha256']})"
    )
    if not rep.files and same_archive:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"both builds kept under {work} for a closer look")
    return 0 if not rep.files and same_archive else 1


if __name__ == "__main__":
    raise SystemExit(main())

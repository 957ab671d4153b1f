"""Run builder's real entry point (`main`) over many cases in one process; print each one's exit
code and stderr as one JSON object. test_os_faults_sweep starts it twice (as root and with dropped
privileges) instead of one process per case: a process costs a second of imports.

stdin: {"case id": {"argv": [...], "env": {...}}}; anything but SystemExit escaping `main` is
recorded as its traceback, so the test sees it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback

from builder.cli import main


def run_one(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    saved = dict(os.environ)
    os.environ.update(env)
    err, out = io.StringIO(), io.StringIO()
    code: int = -1
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the point of the sweep: what escapes main is a traceback
        err.write(traceback.format_exc())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"code": code, "stderr": err.getvalue()}


if __name__ == "__main__":
    cases = json.load(sys.stdin)
    results = {cid: run_one(case["argv"], case["env"]) for cid, case in cases.items()}
    sys.stdout.write(json.dumps(results))

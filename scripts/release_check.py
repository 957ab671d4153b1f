"""Release runners: the packaged program's selftest, judged by the build's own check stage.

`builder build` checks the program in its work folder; this checks the one in dist/P (moved there
by packaging, then verified), with the same rules: thread settings before torch, torch version,
exactly one OpenMP runtime and that it is the file kept in the folder, and on mac targets the
minimum macOS, signatures and `codesign --verify`. Prints the selftest JSON on stdout; on a
mismatch prints one `error:` line and exits with the check's code (8).

    python scripts/release_check.py PROFILE PROGRAM
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.errors import BuilderError  # noqa: E402
from builder.paths import Project  # noqa: E402
from builder.profile import load_profile  # noqa: E402
from builder.stages.check import check  # noqa: E402
from builder.stages.plan import plan_build  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 64
    name, program = argv[0], Path(argv[1]).absolute()
    project = Project(root=ROOT)
    try:
        plan = plan_build(project, load_profile(name, project.profiles), out=ROOT / "dist", wheelhouse=None)
        report = check(program, plan)
    except BuilderError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

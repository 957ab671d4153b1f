"""`stems doctor`: why this runtime is slow on this machine, measured against the build's fingerprint.

The rule book, the calibration and the report are runtime_doctor's (the same that `builder doctor`
and the hook of any frozen program use). Frozen, the freeze's probe saw what the process started
with; in a venv, `main` keeps that (ENV_AT_START) before it exports the runtime's settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .cli_common import AddFlags, print_json
from .errors import UsageError

if TYPE_CHECKING:
    from .cli_common import SubParsers

HELP = "say why this runtime is slow on this machine, against the build's fingerprint"
PROBE_MODULE = "_runtime_builder_probe"  # the freeze's hook registers the probe under this name


def add_parser(sub: SubParsers, add_flags: AddFlags, /) -> None:
    p = sub.add_parser("doctor", help=HELP)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--report", metavar="FILE", help="also write the plain-text report to FILE")
    p.add_argument("--no-redact", action="store_true", help="keep user, home and host names in the report")
    add_flags(p)


def _probe_without_hook(
    cfg: config.RuntimeConfig, env_at_start: dict[str, str], mask: list[int] | None
) -> dict[str, Any]:
    """The probe's document, as far as a process without the freeze's hook (a venv) can tell."""
    from runtime_doctor.host import watched_env

    started = time.perf_counter()
    import torch

    from .selftest import threadpools

    took = time.perf_counter() - started
    at_import = {"threads": int(torch.get_num_threads()), "env": watched_env(os.environ)}
    config.apply_to_torch(cfg)
    return {
        "program": "stems", "profile": cfg.profile, "config_source": cfg.source,
        "threads": {"requested": cfg.threads, "at_import": at_import["threads"]},
        "env_at_start": watched_env(env_at_start), "env_at_import": at_import["env"],
        "cpu_mask_at_start": mask, "settings_calls": [], "libraries_loaded": [],
        "threadpools": threadpools(), "imports": {"torch_s": round(took, 4)},
    }  # fmt: skip


def probe_document(cfg: config.RuntimeConfig) -> dict[str, Any]:
    probe = sys.modules.get(PROBE_MODULE)
    if probe is None:
        from .main import CPU_MASK_AT_START, ENV_AT_START

        return _probe_without_hook(cfg, ENV_AT_START, CPU_MASK_AT_START)
    import torch

    config.apply_to_torch(cfg)
    torch.get_num_threads()
    doc: dict[str, Any] = probe.report()
    return {**doc, "program": "stems"}


def _write(path: str, text: str) -> None:
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--report {path}: is a folder; give a file name, e.g. {target / 'doctor.txt'}")
    tmp = target.with_name(f".{target.name}.stems-tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise UsageError(f"--report {path}: cannot write: {exc.strerror}; give a writable file") from exc


def run(args: argparse.Namespace, cfg: config.RuntimeConfig, /) -> int:
    from runtime_doctor import inprocess, report

    doc = inprocess.diagnose(
        probe_document(cfg), executable=Path(sys.executable), redacted=not args.no_redact
    )
    text = report.render_text(doc)
    if args.report:
        _write(args.report, text)
    if args.json:
        print_json(json.loads(json.dumps(doc)))
    else:
        sys.stdout.write(text)
    return 0

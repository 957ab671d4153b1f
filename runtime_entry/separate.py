"""`stems separate IN... -o OUT`: one-shot separation with a progress bar on stderr."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from . import config
from .cli_common import AddFlags, print_json

if TYPE_CHECKING:
    from .cli_common import SubParsers


def add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default=None, help="preset name or MSST .yaml config (default: bs_roformer_4stem)"
    )
    p.add_argument("--checkpoint", default=None, help="weights (.ckpt/.pt/.pth; loaded weights-only)")
    p.add_argument("--batch-size", type=int, default=None, help="chunks per forward pass (default: config)")
    p.add_argument(
        "--overlap", type=int, default=None, help="num_overlap: chunks covering each sample (default: config)"
    )


def add_parser(sub: SubParsers, add_runtime_flags: AddFlags, /) -> None:
    p = sub.add_parser("separate", help="separate audio files into stems")
    p.add_argument(
        "inputs", nargs="+", metavar="IN", help="audio files (wav, flac, ogg; mp3 where libsndfile can)"
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output folder (OUT/<input name>/<stem>.<fmt>)"
    )
    add_model_flags(p)
    p.add_argument("--stems", nargs="+", default=None, help="only these stems (default: all)")
    p.add_argument("--format", choices=("wav", "flac"), default="wav", help="output format (default wav)")
    p.add_argument(
        "--sample-format",
        choices=("pcm16", "pcm24", "float"),
        default=None,
        help="samples in the files: pcm16, pcm24 or float (32-bit) for wav, pcm16 or pcm24 for flac"
        " (default: float for wav, pcm24 for flac)",
    )
    p.add_argument(
        "--instrumental",
        action="store_true",
        help="also write instrumental.<format>: the mix minus the vocals (or the model's first stem)",
    )
    p.add_argument(
        "--instrumental-of",
        metavar="STEM",
        default=None,
        help="the stem the instrumental leaves out (implies --instrumental)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON result per input on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_runtime_flags(p)


class ProgressBar:
    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last_pct = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        pct = int(100 * done / max(total, 1))
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        if self.tty:
            width = 30
            fill = int(width * done / max(total, 1))
            sys.stderr.write(
                f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} chunks {pct:3d}% eta {eta:5.0f}s"
            )
            if done == total:
                sys.stderr.write("\n")
        elif pct // 10 != self.last_pct // 10 or done == total:
            sys.stderr.write(f"{self.label}: {done}/{total} chunks {pct}% ({elapsed:.0f}s)\n")
        self.last_pct = pct
        sys.stderr.flush()


def run(args: argparse.Namespace, cfg: config.RuntimeConfig) -> int:
    from pathlib import Path

    from .audio import check_output_format
    from .outputs import check_distinct_folders, check_stem_names, job_folder

    # before minutes of work, and before any file is touched: the flags, then where each input's stems go
    check_output_format(args.format, args.sample_format)
    if args.stems is not None:
        check_stem_names(args.stems, "--stems")
    check_distinct_folders(args.inputs)
    config.apply_to_torch(cfg)
    from .engine import Engine, separate_file, untrained_note

    engine = Engine()
    loaded = engine.load(args.model, args.checkpoint)
    if loaded.untrained:
        print(f"stems: warning: {untrained_note(loaded)}", file=sys.stderr)
    for path in args.inputs:
        bar = ProgressBar(Path(path).name, enabled=not args.quiet)
        result = separate_file(
            loaded,
            path,
            args.output,
            stems=args.stems,
            fmt=args.format,
            sample_format=args.sample_format,
            instrumental=args.instrumental_of or args.instrumental,
            batch_size=args.batch_size,
            overlap=args.overlap,
            progress=bar,
        )
        warnings = result["warnings"]
        assert isinstance(warnings, list)
        for warning in warnings:  # damaged input: said even with --quiet, and in --json
            print(f"stems: warning: {warning}", file=sys.stderr)
        if args.json:
            print_json(result)
        elif not args.quiet:
            outputs = result["outputs"]
            assert isinstance(outputs, dict)
            outs = ", ".join(Path(p).name for p in outputs.values())
            print(
                f"{path}: {outs} in {job_folder(args.output, path)} ({result['seconds']}s, RTF {result['realtime_factor']})",
                file=sys.stderr,
            )
    return 0

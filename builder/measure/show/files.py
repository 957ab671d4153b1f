"""compare's --out folder: report.md, report.json and report.html, each written to a temporary
file beside it and renamed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.fsutil import atomic_write_text, require_writable_dir, safe_output
from builder.measure.show import html, markdown


def report_paths(out: Path) -> dict[str, Path]:
    return {"markdown": out / "report.md", "json": out / "report.json", "html": out / "report.html"}


def check_report_folder(out: Path) -> None:
    """Refuse, before any run, a --out whose report files could not be written (fsutil.safe_output)."""
    require_writable_dir(out, "--out")
    for path in report_paths(out).values():
        safe_output(path, "--out")


def write_reports(doc: Mapping[str, Any], out: Path) -> dict[str, Path]:
    """The comparison's document (Comparison.to_json) as the three reports."""
    out.mkdir(parents=True, exist_ok=True)
    paths = report_paths(out)
    atomic_write_text(paths["markdown"], markdown.compare_report(doc), what="--out")
    atomic_write_text(
        paths["json"], json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", what="--out"
    )
    atomic_write_text(paths["html"], html.compare_page(doc), what="--out")
    return paths

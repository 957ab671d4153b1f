"""The HTML report in a real headless browser (Debian's chromium, installed by `make dev`)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from builder.measure.show import html

from .test_units import _fake_result

pytestmark = pytest.mark.slow


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert found, "chromium is required for this test: `apt-get install -y chromium` (make dev does it)"
    return found


def screenshot(page: Path, png: Path, size: str = "1200,2200") -> Path:
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={size}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return png


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_report_renders_in_a_headless_browser(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(html.compare_page(_fake_result()), encoding="utf-8")
    png = screenshot(page, tmp_path / "report.png")
    assert png_size(png) == (1200, 2200)
    # a blank page compresses to a few KB; plots, tables and text do not
    assert png.stat().st_size > 40_000

"""`builder verify`: every tampering with a packaged dist is reported, an untouched dist passes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from helpers import assert_one_line_error, assert_schema

from builder.artifact.verify import verify_dist
from release.helpers import run_cli

LIB = "stems/_internal/libgomp.so.1"
LINK = "stems/_internal/libgomp-dup.so.1"


def test_untouched_dist_passes_with_every_file_checked(dist: Path) -> None:
    report = verify_dist(dist)
    assert report.ok, report.lines()
    assert report.checked == 6  # 4 frozen files, 1 symlink, selftest.json
    assert report.to_json()["ok"] is True


def test_untouched_dist_also_passes_sha256sum_without_builder(dist: Path) -> None:
    proc = subprocess.run(
        ["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=dist, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_flipped_byte_is_reported_as_modified(dist: Path) -> None:
    data = bytearray((dist / LIB).read_bytes())
    data[7] ^= 0x01  # same size: only the hash can tell
    (dist / LIB).write_bytes(bytes(data))
    report = verify_dist(dist)
    assert [d.path for d in report.modified] == [LIB]
    assert not (report.added or report.removed or report.links or report.sums)
    assert not report.ok


def test_truncated_file_is_reported_as_modified_by_size(dist: Path) -> None:
    (dist / "stems/stems").write_bytes(b"short")
    report = verify_dist(dist)
    assert [d.path for d in report.modified] == ["stems/stems"]
    assert "5 bytes" in (report.modified[0].found or "")


def test_added_file_is_reported_even_when_hidden(dist: Path) -> None:
    (dist / "stems/_internal/.payload.so").write_bytes(b"x")
    (dist / "extra.txt").write_text("x")
    report = verify_dist(dist)
    assert report.added == ("extra.txt", "stems/_internal/.payload.so")
    assert not (report.modified or report.removed or report.links)


def test_added_empty_folder_is_reported(dist: Path) -> None:
    (dist / "stems/_internal/plugins").mkdir()
    assert verify_dist(dist).added == ("stems/_internal/plugins/",)


def test_removed_file_is_reported(dist: Path) -> None:
    (dist / "stems/_internal/other.so").unlink()
    report = verify_dist(dist)
    assert report.removed == ("stems/_internal/other.so",)
    assert not (report.modified or report.added or report.links)


def test_swapped_symlink_target_is_reported(dist: Path) -> None:
    (dist / LINK).unlink()
    os.symlink("other.so", dist / LINK)
    report = verify_dist(dist)
    assert [(d.path, d.expected, d.found) for d in report.links] == [
        (LINK, "symlink to libgomp.so.1", "symlink to other.so")
    ]


def test_symlink_replaced_by_a_copy_is_reported(dist: Path) -> None:
    (dist / LINK).unlink()
    (dist / LINK).write_bytes((dist / LIB).read_bytes())
    assert [d.found for d in verify_dist(dist).links] == ["not a symlink"]


def test_file_replaced_by_a_symlink_is_reported_as_modified(dist: Path) -> None:
    (dist / "stems/_internal/other.so").unlink()
    os.symlink("libgomp.so.1", dist / "stems/_internal/other.so")
    report = verify_dist(dist)
    assert [d.found for d in report.modified] == ["symlink to libgomp.so.1"]


def test_edited_manifest_is_caught_by_its_hash_in_sha256sums(dist: Path) -> None:
    # Tampering that also rewrites the manifest entry to match the new bytes.
    (dist / LIB).write_bytes(b"evil")
    manifest = json.loads((dist / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == LIB:
            entry.update(size=4, sha256="sha256:" + __import__("hashlib").sha256(b"evil").hexdigest())
    (dist / "manifest.json").write_text(json.dumps(manifest))
    report = verify_dist(dist)
    assert not report.modified
    assert {d.path for d in report.sums} == {"manifest.json", LIB}


def test_missing_sha256sums_is_reported(dist: Path) -> None:
    (dist / "SHA256SUMS").unlink()
    assert [d.found for d in verify_dist(dist).sums] == ["missing"]


def test_cli_exits_8_with_one_error_line_and_full_json_report(dist: Path) -> None:
    (dist / "stems/_internal/other.so").unlink()
    (dist / "new.bin").write_bytes(b"x")
    proc = run_cli("verify", dist, "--json")
    line = assert_one_line_error(proc, 8, "1 added", "1 removed")
    assert str(dist) in line
    report = json.loads(proc.stdout)
    assert_schema(report, "verify")
    assert report["ok"] is False
    assert report["added"] == ["new.bin"] and report["removed"] == ["stems/_internal/other.so"]


def test_cli_passes_on_untouched_dist(dist: Path) -> None:
    proc = run_cli("verify", dist)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("ok: ")


def test_cli_on_a_folder_without_manifest_is_an_input_error(tmp_path: Path) -> None:
    proc = run_cli("verify", tmp_path)
    assert_one_line_error(proc, 10, "manifest.json")


def test_dist_carries_its_archive_which_verify_checks_against_its_sha256_file(dist: Path) -> None:
    archive = dist / f"{dist.name}.tar.xz"
    assert archive.is_file() and verify_dist(dist).ok
    data = bytearray(archive.read_bytes())
    data[-20] ^= 0xFF
    archive.write_bytes(bytes(data))
    report = verify_dist(dist)
    assert [d.path for d in report.modified] == [archive.name]
    assert not report.added


def test_removed_archive_checksum_is_reported(dist: Path) -> None:
    (dist / f"{dist.name}.tar.xz.sha256").unlink()
    assert verify_dist(dist).removed == (f"{dist.name}.tar.xz.sha256",)

"""Every command that writes refuses to write over what is not a plain file of its own.

The rule is fsutil.safe_output, checked by every atomic write and, before any work, by each
command with an output (`sbom --out`, `tune --out`, `compare --out`, `build --out`): never over a
device, a FIFO, a socket, a folder, a symlink, a dist's records, or the command's own input.
Device nodes are made with mknod in the test's folder, never /dev/null itself: a regression
must not be able to replace a node this machine uses.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder
from release.helpers import make_dist

from builder.artifact.manifest import MANIFEST, SUMS
from builder.errors import InputError
from builder.fsutil import atomic_write_text, safe_output_dir

from .test_builder_files import cli

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, sockets and mknod are POSIX-only")


def _device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the numbers of /dev/null
    except PermissionError:
        pytest.skip("mknod needs root (CAP_MKNOD); the FIFO and socket cases cover special files here")


def _special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        _device(path)
    elif kind == "folder":
        path.mkdir()
        (path / "inside.txt").write_text("mine")
    elif kind == "symlink":
        (path.parent / "real.txt").write_text("the link's target")
        os.symlink("real.txt", path)


def sbom_dist(tmp: Path) -> Path:
    """A dist whose manifest `builder sbom` accepts (make_dist's has no lock or packages)."""
    dist = make_dist(tmp)
    data = json.loads((dist / MANIFEST).read_text())
    data.update(lock={"path": "locks/x.lock", "sha256": "sha256:" + "05" * 32}, packages=[])
    (dist / MANIFEST).write_text(json.dumps(data))
    return dist


def _state(path: Path) -> tuple[int, str]:
    st = path.lstat()
    return stat.S_IFMT(st.st_mode), os.readlink(path) if path.is_symlink() else ""


@POSIX_ONLY
@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "symlink", "socket"])
def test_an_atomic_write_never_replaces_a_special_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "o"  # short: a socket path is limited to ~100 bytes
    sock = socket.socket(socket.AF_UNIX)
    if kind == "socket":
        sock.bind(str(target))
    else:
        _special(kind, target)
    before = _state(target)
    with sock, pytest.raises(InputError) as info:
        atomic_write_text(target, "text")
    assert "refusing to write over it" in info.value.one_line()
    assert _state(target) == before
    assert sorted(p.name for p in tmp_path.iterdir() if ".builder-" in p.name) == []


@pytest.mark.parametrize("record", [MANIFEST, SUMS, "sbom.cdx.json", "tiny-linux-x86_64.tar.xz.sha256"])
def test_an_atomic_write_never_replaces_a_dist_record(tmp_path: Path, record: str) -> None:
    dist = make_dist(tmp_path)
    path = dist / record
    if not path.exists():
        path.write_text("a record builder wrote\n")
    before = path.read_bytes()
    with pytest.raises(InputError, match="is a record of the dist"):
        atomic_write_text(path, "replaced")
    assert path.read_bytes() == before


@pytest.mark.parametrize("record", [MANIFEST, SUMS, "sbom.cdx.json", "elsewhere.json"])
def test_sbom_out_inside_the_dist_is_refused(
    tmp_path: Path, record: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = sbom_dist(tmp_path)
    before = {p.name: p.read_bytes() for p in dist.iterdir() if p.is_file()}
    proc = cli("sbom", dist, "--out", dist / record, capsys=capsys)
    assert_one_line_error(proc, InputError.exit_code, "--out", str(dist / record))
    assert {p.name: p.read_bytes() for p in dist.iterdir() if p.is_file()} == before


@POSIX_ONLY
@pytest.mark.parametrize("kind", ["fifo", "device", "symlink"])
def test_sbom_out_onto_a_special_file_is_refused(tmp_path: Path, kind: str) -> None:
    dist = sbom_dist(tmp_path)
    target = tmp_path / f"sbom-{kind}"
    _special(kind, target)
    before = _state(target)
    proc = run_builder("sbom", dist, "--out", target, timeout=60)
    assert_one_line_error(proc, InputError.exit_code, "--out", "refusing to write over it")
    assert _state(target) == before


def test_sbom_out_onto_its_own_input_by_another_name_is_refused(tmp_path: Path) -> None:
    dist = sbom_dist(tmp_path)
    alias = tmp_path / "alias.json"
    os.link(dist / MANIFEST, alias)  # a hard link: the same file as DIST/manifest.json
    before = alias.read_bytes()
    proc = run_builder("sbom", dist, "--out", alias, timeout=60)
    assert_one_line_error(proc, InputError.exit_code, "is an input of this command")
    assert (dist / MANIFEST).read_bytes() == before


def test_sbom_still_writes_a_new_file_atomically(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dist = sbom_dist(tmp_path)
    proc = cli("sbom", dist, "--out", tmp_path / "out" / "sbom.json", capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "sbom.json").read_text().startswith("{")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["sbom.json"]


@POSIX_ONLY
def test_compare_refuses_a_report_path_that_is_a_fifo_before_any_run(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    out = tmp_path / "reports"
    out.mkdir()
    os.mkfifo(out / "report.json")
    proc = run_builder("compare", dist, dist, "--out", out, "--repeat", "1", timeout=60)
    assert_one_line_error(proc, InputError.exit_code, "report.json", "a FIFO")
    assert stat.S_ISFIFO((out / "report.json").lstat().st_mode)


def test_tune_refuses_to_write_over_a_dist_record_before_measuring(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    before = (dist / MANIFEST).read_bytes()
    proc = run_builder("tune", dist, "--out", dist / MANIFEST, timeout=60)
    assert_one_line_error(proc, InputError.exit_code, "is a record of the dist")
    assert (dist / MANIFEST).read_bytes() == before


@pytest.mark.parametrize("kind", ["a user's folder", "a file", "a symlink"])
def test_build_never_replaces_a_folder_it_did_not_make(tmp_path: Path, kind: str) -> None:
    final = tmp_path / "out" / "P"
    final.parent.mkdir()
    if kind == "a user's folder":
        final.mkdir()
        (final / "thesis.tex").write_text("chapter 1")
    elif kind == "a file":
        final.write_text("mine")
    else:
        os.symlink(tmp_path, final)
    with pytest.raises(InputError, match="refusing to replace it"):
        safe_output_dir(final, "--out")


def test_build_out_holding_a_users_folder_of_the_profiles_name_is_refused_before_any_stage(
    project: Path,
) -> None:
    tmp_path = project
    name = "minimal-linux-x86_64"
    users = tmp_path / "out" / name
    users.mkdir(parents=True)
    (users / "thesis.tex").write_text("chapter 1")
    proc = run_builder(
        "--root", tmp_path, "build", "--profile", name, "--out", tmp_path / "out",
        env={"BUILDER_WORK_DIR": str(tmp_path / "work")}, timeout=120,
    )  # fmt: skip
    assert_one_line_error(proc, InputError.exit_code, "not a folder builder made")
    assert "==> install" not in proc.stderr
    assert (users / "thesis.tex").read_text() == "chapter 1"


def test_tune_refuses_to_write_over_the_runtimes_own_program(tmp_path: Path) -> None:
    dist = make_dist(tmp_path)
    program = next(p for p in (dist / "stems").iterdir() if p.name in ("stems", "stems.exe"))
    before = program.read_bytes()
    proc = run_builder("tune", dist, "--out", program, timeout=60)
    assert_one_line_error(proc, InputError.exit_code, "is an input of this command")
    assert program.read_bytes() == before

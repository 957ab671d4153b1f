"""A frozen folder sized from its files on disk, by package: torch is there without its dist-info;
a budget failure names the largest contributors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_schema, run_builder

from builder.artifact.contributors import frozen_contributors
from builder.artifact.inspect import inspect_path
from builder.errors import BudgetError
from builder.profile import load_profile
from builder.stages.build import check_size_budget


def _frozen(tmp_path: Path) -> Path:
    """A PyInstaller onedir as a freeze of torch leaves it: no dist-info for torch, numpy's kept."""
    folder = tmp_path / "sep"
    internal = folder / "_internal"

    def put(rel: str, size: int) -> None:
        path = internal / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:  # sparse: the size on disk is what lstat reports, at no cost
            fh.truncate(size)

    put("torch/lib/libtorch_cpu.so", 300_000_000)
    put("torch/lib/libgomp.so.1", 1_000_000)
    put("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so", 9_000_000)
    put("numpy.libs/libscipy_openblas64_.so", 25_000_000)
    put("libpython3.11.so.1.0", 5_000_000)
    info = internal / "numpy-2.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 2.3.0\n")
    (info / "RECORD").write_text("numpy/__init__.py,,\nnumpy.libs/libscipy_openblas64_.so,,\n")
    (folder / "sep").write_bytes(b"\x7fELF" + b"\0" * 996)
    return folder


def test_inspect_of_a_frozen_folder_sizes_packages_from_the_files_on_disk(tmp_path: Path) -> None:
    info = inspect_path(_frozen(tmp_path)).to_json()
    assert info["kind"] == "frozen"
    rows = {r["name"]: r for r in info["packages"]}
    assert info["packages"][0]["name"] == "torch" and rows["torch"]["size"] == 301_000_000
    assert rows["torch"]["version"] is None and rows["torch"]["files"] == 2
    # numpy's vendored libraries and its dist-info count as numpy, with the version it records
    numpy = rows["numpy"]
    assert numpy["version"] == "2.3.0" and 34_000_000 < numpy["size"] < 34_001_000 and numpy["files"] == 4
    assert rows["libpython3.11.so.1.0"]["size"] == 5_000_000 and rows["(program)"]["size"] == 1000
    assert sum(r["size"] for r in info["packages"]) == info["total_bytes"]
    proc = run_builder("inspect", tmp_path / "sep")
    assert proc.returncode == 0 and "torch" in proc.stdout and "301.0 MB" in proc.stdout, proc.stderr
    proc = run_builder("inspect", tmp_path / "sep", "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert_schema(document, "inspect")
    assert document == info


def test_a_frozen_folder_over_its_size_budget_names_its_largest_contributors(tmp_path: Path) -> None:
    folder = _frozen(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/p.toml").write_text(
        'description = "p"\n[target]\nname = "linux-x86_64"\npython = "3.11"\n[bench]\nmax-size-mb = 200\n'
    )
    profile = load_profile("p", tmp_path / "profiles")
    size = sum(r.size for r in frozen_contributors(folder))
    with pytest.raises(BudgetError) as err:
        check_size_budget(profile, folder, size, 9)
    line = err.value.one_line()
    assert "340 MB, over the budget of 200 MB" in line and "see the size report" not in line
    assert "largest: torch 301.0 MB, numpy 34.0 MB, libpython3.11.so.1.0 5.0 MB, (program) 1.0 KB" in line
    check_size_budget(profile, folder, 199_000_000, 9)  # within budget: nothing read, nothing raised


def test_the_files_budget_names_the_entries_with_most_files(tmp_path: Path) -> None:
    folder = _frozen(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/p.toml").write_text(
        'description = "p"\n[target]\nname = "linux-x86_64"\npython = "3.11"\n[bench]\nmax-files = 5\n'
    )
    with pytest.raises(BudgetError, match=r"has 9 files, over the budget of 5; most files: numpy 4, torch 2"):
        check_size_budget(load_profile("p", tmp_path / "profiles"), folder, 1, 9)

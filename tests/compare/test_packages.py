"""compare's package list of a frozen runtime, from small real dists (packaged by builder's own
`package`): a dist's list is its manifest's bundled packages, also the pure-Python ones PyInstaller
keeps only in its PYZ archive; a frozen folder without a manifest is sized from its files on disk,
versioned where PyInstaller kept a dist-info.
Its OpenMP files are those in the program's own folder, whatever the program is named."""

from __future__ import annotations

import shutil
from pathlib import Path

from builder.artifact.manifest import InstalledPackage, package, packages_json
from builder.measure.compare import static_facts
from builder.measure.take.subject import resolve_path
from builder.paths import Project

# a real (tiny) binary, under an OpenMP runtime's name: the audit parses what it lists
MACHO = Path(__file__).resolve().parents[1] / "fixtures" / "macho" / "markupsafe-universal2.so"


def _frozen(tmp: Path, name: str = "stems") -> Path:
    """A onedir freeze: the program (its PYZ archive inside) and one package with files of its own."""
    frozen = tmp / "frozen" / name
    (frozen / "_internal" / "numpy").mkdir(parents=True)
    (frozen / name).write_bytes(b"program, and the PYZ archive appended to it\n" * 10)
    (frozen / "_internal" / "numpy" / "_core.so").write_bytes(b"extension module\n" * 10)
    return frozen


def _versions(path: Path, project: Path) -> dict[str, tuple[str, int]]:
    packages = static_facts(resolve_path(path, Project(root=project)))["packages"]
    return {key: (p["version"], p["size"]) for key, p in packages.items()}


def test_a_dists_packages_include_one_only_in_the_pyz_archive(tmp_path: Path) -> None:
    installed = [
        InstalledPackage(name="numpy", version="2.1.0", size=170, files=1, top_level=("numpy",)),
        # pure Python: PyInstaller put its modules only into the PYZ, so no file on disk is its own
        InstalledPackage(name="tqdm", version="4.67.1", size=5000, files=40, top_level=("tqdm",)),
        # in the venv, not in the program
        InstalledPackage(
            name="pyinstaller", version="6.16.0", size=9000, files=90, top_level=("PyInstaller",)
        ),
    ]
    body = {"profile": "p", "packages": packages_json(installed, frozenset({"numpy", "tqdm", "stems"}))}
    dist = tmp_path / "dist" / "p"
    package(_frozen(tmp_path), dist, body, {}, archive_epoch=None)
    assert _versions(dist, tmp_path) == {"numpy": ("2.1.0", 170), "tqdm": ("4.67.1", 0)}


def test_a_frozen_folder_without_a_manifest_versions_what_its_dist_info_folders_claim(tmp_path: Path) -> None:
    frozen = _frozen(tmp_path)
    info = frozen / "_internal" / "tqdm-4.67.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tqdm\nVersion: 4.67.1\n")
    # tqdm's modules are in the PYZ archive: its dist-info is all it has on disk; numpy kept none
    assert _versions(frozen, tmp_path) == {"tqdm": ("4.67.1", (info / "METADATA").stat().st_size)}


def _openmp(path: Path, project: Path) -> list[str]:
    facts = static_facts(resolve_path(path, Project(root=project)))["openmp_files"]
    assert "error" not in facts, facts["error"]
    return [r["path"] for r in facts["runtimes"]]


def test_a_dists_openmp_files_are_in_its_own_programs_folder(tmp_path: Path) -> None:
    # a team's own program ([program].name msst-inference), not the bundled stems
    frozen = _frozen(tmp_path, "msst-inference")
    (frozen / "_internal" / "torch" / "lib").mkdir(parents=True)
    shutil.copyfile(MACHO, frozen / "_internal" / "torch" / "lib" / "libomp.dylib")
    body = {"profile": "msst", "program": {"name": "msst-inference"}, "packages": []}
    dist = tmp_path / "dist" / "msst"
    package(frozen, dist, body, {}, archive_epoch=None)
    assert _openmp(dist, tmp_path) == ["_internal/torch/lib/libomp.dylib"]


def test_a_frozen_folder_without_a_manifest_has_its_openmp_files_read(tmp_path: Path) -> None:
    frozen = _frozen(tmp_path)
    (frozen / "_internal" / "torch" / "lib").mkdir(parents=True)
    shutil.copyfile(MACHO, frozen / "_internal" / "torch" / "lib" / "libomp.dylib")
    assert _openmp(frozen, tmp_path) == ["_internal/torch/lib/libomp.dylib"]

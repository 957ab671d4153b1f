"""Pure parts of the OpenMP audit: names, search paths, symbol checks, probe judging."""

from __future__ import annotations

import doctest
import importlib
import json
import os
from pathlib import Path

import pytest

from builder.openmp import model
from builder.openmp.formats import Dependencies, Import, SearchContext, Symbols, elf, macho, pe
from builder.openmp.plan import missing_symbols
from builder.openmp.verify import check_order, import_orders


@pytest.mark.parametrize("module", [model, elf, macho, importlib.import_module("builder.openmp.verify")])
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("libgomp.so.1", "gnu"),
        ("libgomp-e985bcbb.so.1.0.0", "gnu"),
        ("libgomp.1.dylib", "gnu"),
        ("libomp.dylib", "llvm"),
        ("libomp.so", "llvm"),
        ("libomp140.x86_64.dll", "llvm"),
        ("libiomp5.dylib", "intel"),
        ("libiomp5md.dll", "intel"),
        ("libiomp5.so", "intel"),
        ("vcomp140.dll", "msvc"),
        ("VCOMP140.DLL", "msvc"),
        ("libompitrace.so", None),
        ("libgomp.py", None),
        ("libtorch_cpu.so", None),
        ("libomptarget.so", None),
    ],
)
def test_family_of(name: str, family: str | None) -> None:
    assert model.family_of(name) == family


def _exists(*paths: str):
    """A file system holding only `paths` ("a/../b" resolves as the OS would, without symlinks)."""
    known = {Path(p) for p in paths}
    return lambda p: Path(os.path.normpath(p)) in known


def test_elf_runpath_hides_rpath() -> None:
    deps = Dependencies(
        format="elf", arch="x86_64", needed=("libgomp.so.1",), rpath=("/r",), runpath=("$ORIGIN",)
    )
    assert [(d.as_posix(), how) for d, how in elf.search_dirs(deps, Path("/t/lib/a.so"))] == [
        ("/t/lib", "runpath")
    ]
    ctx = SearchContext(root=Path("/t"), exists=_exists("/r/libgomp.so.1", "/t/lib/libgomp.so.1"), by_name={})
    hit = elf.resolve(Path("/t/lib/a.so"), deps, "libgomp.so.1", ctx)
    assert hit and hit.path == Path("/t/lib/libgomp.so.1") and hit.how == "runpath"


def test_elf_soname_fallback_only_when_unique() -> None:
    deps = Dependencies(format="elf", arch="x86_64", needed=("libgomp.so.1",))
    one = SearchContext(
        root=Path("/t"), exists=_exists(), by_name={"libgomp.so.1": (Path("/t/torch/lib/libgomp.so.1"),)}
    )
    hit = elf.resolve(Path("/t/x/a.so"), deps, "libgomp.so.1", one)
    assert hit and hit.how == "soname"
    two = SearchContext(root=Path("/t"), exists=_exists(), by_name={"libgomp.so.1": (Path("/a"), Path("/b"))})
    assert elf.resolve(Path("/t/x/a.so"), deps, "libgomp.so.1", two) is None


def test_macho_rpath_loader_and_executable_path() -> None:
    deps = Dependencies(
        format="macho", arch="x86_64", needed=(), rpath=("/Users/ci/lib", "@loader_path/../.dylibs")
    )
    ctx = SearchContext(
        root=Path("/t"),
        exists=_exists("/t/pkg/.dylibs/libomp.dylib", "/t/app/libiomp5.dylib"),
        executable_dir=Path("/t/app"),
    )
    hit = macho.resolve(Path("/t/pkg/sub/a.so"), deps, "@rpath/libomp.dylib", ctx)
    assert hit and hit.path == Path("/t/pkg/sub/../.dylibs/libomp.dylib") and hit.how == "rpath-entry"
    hit = macho.resolve(Path("/t/x.so"), deps, "@executable_path/libiomp5.dylib", ctx)
    assert hit and hit.how == "executable_path"
    no_exe = SearchContext(root=Path("/t"), exists=ctx.exists)
    assert macho.resolve(Path("/t/x.so"), deps, "@executable_path/libiomp5.dylib", no_exe) is None
    # An absolute install name means the target machine, never this host.
    assert macho.resolve(Path("/t/x.so"), deps, "/usr/lib/libomp.dylib", ctx) is None


def test_pe_same_dir_then_dll_dirs_then_name() -> None:
    deps = Dependencies(format="pe", arch="amd64", needed=("libiomp5md.dll",))
    ctx = SearchContext(
        root=Path("/t"),
        exists=_exists("/t/torch/lib/libiomp5md.dll"),
        dll_dirs=(Path("/t/torch/lib"),),
        by_name={"libiomp5md.dll": (Path("/t/torch/lib/libiomp5md.dll"),)},
    )
    hit = pe.resolve(Path("/t/sklearn/a.pyd"), deps, "LIBIOMP5MD.DLL", ctx)
    assert hit and hit.path == Path("/t/torch/lib/libiomp5md.dll") and hit.how == "dll-dir"


def _symbols(*exports: tuple[str, str | None], defines: tuple[str, ...] = ()) -> Symbols:
    return Symbols(imports=(), exports=frozenset(exports), defines_versions=frozenset(defines))


def test_missing_symbols_versioned_and_flat() -> None:
    user = Symbols(
        imports=(
            Import(name="GOMP_parallel", version="GOMP_4.0", library="libgomp-x.so.1"),
            Import(name="omp_get_max_threads", version="OMP_1.0", library="libgomp-x.so.1"),
            Import(name="memcpy", version="GLIBC_2.14", library="libc.so.6"),  # not the duplicate's
            Import(name="__kmpc_fork_call"),  # flat lookup: the duplicate's because it exports it
            Import(name="omp_weak", library="libgomp-x.so.1", weak=True),
        ),
        exports=frozenset(),
        needs_versions=frozenset({("libgomp-x.so.1", "GOMP_4.0"), ("libgomp-x.so.1", "OMP_1.0")}),
    )
    dup = _symbols(("__kmpc_fork_call", None))
    primary = _symbols(("omp_get_max_threads", "OMP_1.0"), ("__kmpc_fork_call", None), defines=("OMP_1.0",))
    checked, missing = missing_symbols(user, {"libgomp-x.so.1"}, dup, primary)
    assert checked == 4
    assert missing == ["GOMP_parallel@GOMP_4.0", "version GOMP_4.0"]


def test_import_orders() -> None:
    assert len(import_orders(("torch", "sklearn", "numpy"))) == 6
    orders = import_orders(("torch", "a", "b", "c"))
    assert ("torch", "a", "b", "c") in orders and ("a", "b", "c", "torch") in orders
    assert len(orders) == len(set(orders))


def _probe(runtimes: list[str], limit: dict, after: list[int]) -> str:
    data = {
        "runtimes": [{"filepath": r, "num_threads": 2} for r in runtimes],
        "under_limit_1": limit,
        "after_torch_set_3": after,
    }
    return "noise\n" + json.dumps(data) + "\n"


def test_check_order_accepts_one_shared_runtime() -> None:
    out = _probe(["/v/torch/lib/libgomp.so.1"], {"runtimes": [1], "torch": 1, "sklearn": 1}, [3])
    result = check_order(("torch", "sklearn"), 0, out, "")
    assert result.problems == () and result.torch_limit_seen is True


def test_check_order_reports_every_failure() -> None:
    out = _probe(
        ["/a/libgomp.so.1", "/b/libgomp-x.so.1"], {"runtimes": [1, 2], "torch": 1, "sklearn": 2}, [3, 2]
    )
    problems = check_order(("sklearn", "torch"), 0, out, "").problems
    assert any("2 OpenMP runtimes loaded" in p for p in problems)
    assert any("not seen by: runtimes, sklearn" in p for p in problems)
    assert any("torch.set_num_threads(3) not seen" in p for p in problems)


def test_check_order_omp_error_15_and_crash() -> None:
    stderr = "OMP: Error #15: Initializing libiomp5.dylib, but found libomp.dylib already initialized.\nAbort"
    problems = check_order(("sklearn", "torch"), -6, "", stderr).problems
    assert problems[0].startswith("exit -6") and "OMP: Error #15" in problems[1]

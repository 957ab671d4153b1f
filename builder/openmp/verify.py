"""Verify in the real process: fresh interpreters, one per import order, no KMP_DUPLICATE_LIB_OK escape.

A loaded library cannot be unloaded, so each import order gets its own subprocess (threadpoolctl's
own tests do the same). The child reports what threadpoolctl sees as JSON on its last stdout line.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import CheckError
from builder.openmp.model import AuditReport, JsonRecord
from builder.tools.process import run

OMP_ERROR = "OMP: Error #15"

# Runs inside the audited environment's Python. Never imported by builder.
PROBE = r"""
import importlib, json, os, sys
order = sys.argv[1:]
out = {"order": order}
mods = {name: importlib.import_module(name) for name in order}
from threadpoolctl import threadpool_info, threadpool_limits

def openmp():
    return [
        {"filepath": os.path.realpath(d["filepath"]), "internal_api": d["internal_api"],
         "version": d.get("version"), "num_threads": d["num_threads"]}
        for d in threadpool_info() if d["user_api"] == "openmp"
    ]

def sklearn_threads():
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    return _openmp_effective_n_threads()

torch = mods.get("torch")
if torch is not None:  # a parallel workload through torch's runtime
    a = torch.randn(512, 512)
    out["torch_matmul"] = float((a @ a).sum())
if "sklearn" in mods:  # a parallel workload through scikit-learn's runtime (KMeans uses OpenMP)
    import numpy as np
    from sklearn.cluster import KMeans
    X = np.random.default_rng(0).normal(size=(2000, 8))
    out["sklearn_kmeans_inertia"] = float(KMeans(n_clusters=4, n_init=1, random_state=0).fit(X).inertia_)
out["runtimes"] = openmp()
with threadpool_limits(limits=1):
    out["under_limit_1"] = {"runtimes": [r["num_threads"] for r in openmp()]}
    if torch is not None:
        out["under_limit_1"]["torch"] = torch.get_num_threads()
    if "sklearn" in mods:
        out["under_limit_1"]["sklearn"] = sklearn_threads()
if torch is not None:
    # A limit set through torch must reach every runtime in the process (3: distinct from defaults).
    torch.set_num_threads(3)
    out["after_torch_set_3"] = [r["num_threads"] for r in openmp()]
print(json.dumps(out))
"""


@dataclass(frozen=True, kw_only=True)
class OrderResult(JsonRecord):
    order: tuple[str, ...]
    exit_code: int
    runtimes: tuple[str, ...]  # real paths of the OpenMP runtimes loaded
    limit_1_seen: dict[str, Any]
    torch_limit_seen: bool | None
    problems: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class VerifyReport(JsonRecord):
    python: str
    packages: tuple[str, ...]
    orders: tuple[OrderResult, ...]

    @property
    def ok(self) -> bool:
        return all(not o.problems for o in self.orders)

    @property
    def max_runtimes(self) -> int:
        return max((len(o.runtimes) for o in self.orders), default=0)

    def raise_if_failed(self) -> None:
        bad = [o for o in self.orders if o.problems]
        if bad:
            raise CheckError(
                f"OpenMP verify failed for import order {' -> '.join(bad[0].order)}: {bad[0].problems[0]}",
                hint=f"{len(bad)} of {len(self.orders)} orders failed",
            )


def openmp_packages(report: AuditReport) -> tuple[str, ...]:
    """Import names of the packages whose binaries load an OpenMP runtime, torch first."""
    names = set()
    for load in report.loads:
        parts = load.binary.split("/")
        if "site-packages" in parts:
            parts = parts[parts.index("site-packages") + 1 :]
        top = parts[0].split(".")[0]
        if len(parts) > 1 and top.isidentifier() and not parts[0].endswith((".libs", ".dylibs")):
            names.add(top)
    names.discard("functorch")  # torch imports it; not a package of its own to users
    return tuple(sorted(names, key=lambda n: (n != "torch", n)))


def import_orders(packages: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every order for up to three packages; beyond, each package first and last.

    >>> import_orders(("torch", "sklearn"))
    [('torch', 'sklearn'), ('sklearn', 'torch')]
    """
    if len(packages) <= 3:
        return list(itertools.permutations(packages))
    orders = []
    for p in packages:
        rest = tuple(q for q in packages if q != p)
        orders += [(p, *rest), (*rest, p)]
    return list(dict.fromkeys(orders))


def check_order(order: tuple[str, ...], exit_code: int, stdout: str, stderr: str) -> OrderResult:
    """Judge one child's output (pure, so the failure cases are tested without a process)."""
    problems = []
    data: dict[str, Any] = {}
    if exit_code != 0:
        problems.append(f"exit {exit_code}: {(stderr.strip().splitlines() or ['(no output)'])[-1]}")
    if OMP_ERROR in stderr or OMP_ERROR in stdout:
        problems.append("OMP: Error #15 (duplicate OpenMP runtime)")
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if lines:
        data = json.loads(lines[-1])
    elif exit_code == 0:
        problems.append("the probe printed no result")
    # One entry per loaded library object (not per distinct path): two mappings of one file are two.
    runtimes = tuple(sorted(r["filepath"] for r in data.get("runtimes", [])))
    if data and len(runtimes) != 1:
        problems.append(f"{len(runtimes)} OpenMP runtimes loaded: {', '.join(runtimes) or '(none)'}")
    limit = data.get("under_limit_1", {})
    not_seen = [
        k for k, v in limit.items() if (v != 1 if not isinstance(v, list) else any(x != 1 for x in v))
    ]
    if not_seen:
        problems.append(f"threadpool_limits(1) not seen by: {', '.join(not_seen)}")
    torch_seen = None
    if "after_torch_set_3" in data:
        torch_seen = all(n == 3 for n in data["after_torch_set_3"])
        if not torch_seen:
            problems.append(
                f"torch.set_num_threads(3) not seen by every runtime: {data['after_torch_set_3']}"
            )
    return OrderResult(
        order=order,
        exit_code=exit_code,
        runtimes=runtimes,
        limit_1_seen=limit,
        torch_limit_seen=torch_seen,
        problems=tuple(problems),
    )


def verify(python: Path, packages: tuple[str, ...], *, timeout: float = 300) -> VerifyReport:
    """Run the probe once per import order with `python` (the environment's interpreter)."""
    if "torch" not in packages:
        packages = ("torch", *packages)
    env = {"KMP_DUPLICATE_LIB_OK": "FALSE"}  # never TRUE: that hides the duplicate and keeps the crash
    results = []
    for order in import_orders(packages):
        proc = run(
            [python, "-c", PROBE, *order],
            tool=f"openmp probe ({python})",
            env=env,
            check=False,
            timeout=timeout,
        )
        results.append(check_order(order, proc.returncode, proc.stdout, proc.stderr))
    return VerifyReport(python=str(python), packages=packages, orders=tuple(results))

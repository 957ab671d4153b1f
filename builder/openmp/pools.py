"""threadpoolctl's inventory of a process, read one way everywhere: its OpenMP pools, one per
loaded file, and the OpenMP runtimes those files are (the check, the probe, bench's workload runs
and the dist's bundle report all read it here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from builder.openmp.model import family_name


def openmp_pools(threadpools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The OpenMP pools, one per loaded file (its first pool), in threadpoolctl's order (pure).

    >>> pools = [{"user_api": "openmp", "filepath": "/a/libgomp.so.1", "num_threads": 2},
    ...          {"user_api": "blas", "filepath": "/a/libopenblas.so"},
    ...          {"user_api": "openmp", "filepath": "/a/libgomp.so.1", "num_threads": 4}]
    >>> [(p["filepath"], p["num_threads"]) for p in openmp_pools(pools)]
    [('/a/libgomp.so.1', 2)]
    """
    seen: dict[str, dict[str, Any]] = {}
    for pool in threadpools:
        if pool.get("user_api") == "openmp":
            seen.setdefault(str(pool.get("filepath", "")), dict(pool))
    return list(seen.values())


def loaded_runtimes(threadpools: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The OpenMP runtimes loaded, as {path, family}: the family's display name, '?' if none (pure).

    >>> loaded_runtimes([{"user_api": "openmp", "filepath": "/x/libiomp5.so"}])
    [{'path': '/x/libiomp5.so', 'family': 'Intel libiomp5'}]
    """
    return [
        {"path": str(p.get("filepath", "")), "family": family_name(str(p.get("filepath", ""))) or "?"}
        for p in openmp_pools(threadpools)
    ]

"""threadpoolctl's inventory of a process, read one way everywhere: its OpenMP pools, one per
loaded file, and the OpenMP runtimes those files are (the check, the probe, bench's workload runs
and the dist's bundle report all read it here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from builder.openmp.model import family_name
from runtime_doctor.rules import openmp_files


def openmp_pools(threadpools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The OpenMP pools, one per loaded file (its first pool, its path made real), in threadpoolctl's
    order (pure but for realpath): the doctor's inventory (runtime_doctor.rules.openmp_files), as
    builder's stages read pools.

    >>> pools = [{"user_api": "openmp", "filepath": "/a/libgomp.so.1", "num_threads": 2},
    ...          {"user_api": "openmp", "filepath": "/a/libgomp.so.1", "num_threads": 4}]
    >>> [(p["filepath"], p["num_threads"]) for p in openmp_pools(pools)]
    [('/a/libgomp.so.1', 2)]
    """
    return [{**pool, "filepath": path} for path, pool in openmp_files(threadpools)]


def loaded_runtimes(threadpools: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The OpenMP runtimes loaded, as {path, family}: the family's display name, '?' if none (pure).

    >>> loaded_runtimes([{"user_api": "openmp", "filepath": "/x/libiomp5.so"}])
    [{'path': '/x/libiomp5.so', 'family': 'Intel libiomp5'}]
    """
    return [
        {"path": str(p.get("filepath", "")), "family": family_name(str(p.get("filepath", ""))) or "?"}
        for p in openmp_pools(threadpools)
    ]

"""tune's decisions (pure): the fastest candidate of a stage, the gain of the best settings over
the current ones, and the runtime config file it writes."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.errors import ToolError
from builder.measure.judge.sequential import Outcome

SCHEMA = "runtime-builder/tune/1"
SETTINGS = ("threads", "interop_threads", "matmul_precision")


def best_of(
    name: str, label: str, candidates: Sequence[Mapping[str, Any]], times: Sequence[Sequence[float]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The candidate with the lowest median job time, and every candidate's row (pure).

    >>> best_of("threads", "rt", [{"threads": 1, "interop_threads": 1, "matmul_precision": "high"},
    ...                           {"threads": 2, "interop_threads": 1, "matmul_precision": "high"}],
    ...         [[2.0, 2.2], [1.1, 1.3]])[0]["threads"]
    2
    """
    rows = []
    for c, ts in zip(candidates, times, strict=False):
        med = statistics.median(ts) if ts else None
        rows.append({**c, "median_s": round(med, 4) if med is not None else None, "runs": list(ts)})
    best = min((r for r in rows if r["median_s"] is not None), key=lambda r: r["median_s"], default=None)
    if best is None:
        raise ToolError(f"{label}: every {name} candidate failed or hung")
    return {k: best[k] for k in SETTINGS}, rows


def gain_of(outcome: Outcome) -> dict[str, Any]:
    """The tuned run against the current one: ratio, interval, call; a gain that is neither
    slower, faster nor inside the band within the budget is said so, never taken as "same"."""
    stat = {k: v for k, v in outcome.decision.items() if k != "verdict"}
    call = outcome.decision["verdict"]
    return {
        **stat,
        "verdict": call["text"] + (f"; {outcome.settle}" if outcome.settle else ""),
        "call": call["call"],
        "decided": call["call"] in ("slower", "faster", "same"),
        "rounds": outcome.rounds,
        "percent": round((1 - stat["ratio"]) * 100, 1) if stat.get("ratio") else None,
    }


def config_data(
    existing: Mapping[str, Any], best: Mapping[str, Any], *, at: str, cpus: int, gain: str, model: str
) -> dict[str, Any]:
    """The runtime config file with the best settings over what it had, and how they were found."""
    return {**existing, **best, "tuned": {"at": at, "cpus": cpus, "gain": gain, "model": model}}


@dataclass(frozen=True, kw_only=True)
class Tuning:
    """What `builder tune` found; `to_json` is the --json document (builder/schemas/tune.schema.json)."""

    runtime: dict[str, Any]
    current: dict[str, Any]
    best: dict[str, Any]
    stages: dict[str, list[dict[str, Any]]]
    gain: dict[str, Any]
    machine: dict[str, Any]
    config_file: str
    written: bool = False
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {"schema": SCHEMA, **{k: getattr(self, k) for k in self.__dataclass_fields__}}
        if self.note is None:
            del doc["note"]
        return doc

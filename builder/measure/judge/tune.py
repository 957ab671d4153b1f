"""tune's decisions (pure): the fastest candidate of a stage, the gain of the best settings over
the current ones, and the runtime config file it writes."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.errors import ToolError
from builder.measure.judge.sequential import Outcome
from builder.measure.judge.stats import Ratio

SCHEMA = "runtime-builder/tune/1"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What tune tries and writes: the runtime config's three keys."""

    threads: int
    interop_threads: int
    matmul_precision: str

    def to_json(self) -> dict[str, Any]:
        return {"threads": self.threads, "interop_threads": self.interop_threads,
                "matmul_precision": self.matmul_precision}  # fmt: skip

    @property
    def label(self) -> str:
        return f"threads={self.threads} interop={self.interop_threads} {self.matmul_precision}"


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One candidate of a stage: its settings and its job times (median over its runs)."""

    settings: Settings
    runs: tuple[float, ...]

    @property
    def median_s(self) -> float | None:
        return round(statistics.median(self.runs), 4) if self.runs else None

    def to_json(self) -> dict[str, Any]:
        return {**self.settings.to_json(), "median_s": self.median_s, "runs": list(self.runs)}


def best_of(name: str, label: str, candidates: Sequence[Candidate]) -> Settings:
    """The candidate with the lowest median job time (pure); none that ran is an error.

    >>> s = [Settings(threads=n, interop_threads=1, matmul_precision="high") for n in (1, 2)]
    >>> best_of("threads", "rt", [Candidate(settings=s[0], runs=(2.0, 2.2)), Candidate(settings=s[1], runs=(1.1, 1.3))]).threads
    2
    """
    ran = [c for c in candidates if c.median_s is not None]
    if not ran:
        raise ToolError(f"{label}: every {name} candidate failed or hung")
    return min(ran, key=lambda c: float(c.median_s or 0)).settings


@dataclass(frozen=True, kw_only=True)
class Gain:
    """The tuned run against the current one. A gain that is neither slower, faster nor inside the
    band within the budget is said so (decided is false), never taken as "same"."""

    ratio: Ratio
    verdict: str
    call: str
    rounds: int

    @property
    def decided(self) -> bool:
        return self.call in ("slower", "faster", "same")

    @property
    def percent(self) -> float | None:
        return round((1 - self.ratio.ratio) * 100, 1) if self.ratio.ratio else None

    def to_json(self) -> dict[str, Any]:
        return {**self.ratio.to_json(), "verdict": self.verdict, "call": self.call, "decided": self.decided,
                "rounds": self.rounds, "percent": self.percent}  # fmt: skip


def gain_of(outcome: Outcome) -> Gain:
    call = outcome.decision["verdict"]
    return Gain(
        ratio=Ratio.of(outcome.decision), verdict=call["text"] + (f"; {outcome.settle}" if outcome.settle else ""),
        call=call["call"], rounds=outcome.rounds,
    )  # fmt: skip


def config_data(
    existing: Mapping[str, Any], best: Settings, *, at: str, cpus: int, gain: str, model: str
) -> dict[str, Any]:
    """The runtime config file with the best settings over what it had, and how they were found."""
    return {**existing, **best.to_json(), "tuned": {"at": at, "cpus": cpus, "gain": gain, "model": model}}


@dataclass(frozen=True, kw_only=True)
class Machine:
    cpus: int
    machine: str


@dataclass(frozen=True, kw_only=True)
class Tuning:
    """What `builder tune` found; `to_json` is the --json document (builder/schemas/tune.schema.json)."""

    runtime: dict[str, Any]  # Subject.describe()
    current: Settings
    best: Settings
    stages: dict[str, tuple[Candidate, ...]]  # the setting a stage varies -> its candidates
    gain: Gain
    machine: Machine
    config_file: str
    written: bool = False
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {
            "schema": SCHEMA, "runtime": self.runtime, "current": self.current.to_json(), "best": self.best.to_json(),
            "stages": {k: [c.to_json() for c in rows] for k, rows in self.stages.items()},
            "gain": self.gain.to_json(),
            "machine": {"cpus": self.machine.cpus, "machine": self.machine.machine},
            "config_file": self.config_file, "written": self.written,
        }  # fmt: skip
        return {**doc, "note": self.note} if self.note is not None else doc

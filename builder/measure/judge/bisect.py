"""bisect's decisions (pure): B's extra packages, the closure a subset needs, each test's record,
the packages named responsible, and the conclusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.measure.judge.sequential import Outcome
from builder.measure.judge.stats import Ratio
from builder.measure.take.metrics import METRICS

SCHEMA = "runtime-builder/bisect/1"


def extras_of(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """B's packages that A lacks or has at another version (pure)."""
    return sorted(n for n, p in b.items() if n not in a or a[n]["version"] != p["version"])


def closure(subset: Sequence[str], b: Mapping[str, Any], extras: Sequence[str]) -> list[str]:
    """The subset plus the extras it needs (transitively), so every package in it can import (pure)."""
    want, todo = set(subset), list(subset)
    extra_set = set(extras)
    while todo:
        for dep in b[todo.pop()]["requires"]:
            if dep in extra_set and dep not in want:
                want.add(dep)
                todo.append(dep)
    return sorted(want)


@dataclass(frozen=True, kw_only=True)
class Step:
    """One test: a subset's environment (or B) against A, and its call. A test that is neither
    slower, faster nor inside the band is undecided, never cleared as if it were the same."""

    test: int
    packages: tuple[str, ...]
    label: str
    ratio: Ratio
    rounds: int
    verdict: str
    call: str

    @property
    def slower(self) -> bool:
        return self.call == "slower"

    @property
    def undecided(self) -> bool:
        return self.call not in ("slower", "faster", "same")

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test, "packages": list(self.packages), "label": self.label, **self.ratio.to_json(),
            "rounds": self.rounds, "verdict": self.verdict, "call": self.call, "slower": self.slower,
            "undecided": self.undecided,
        }  # fmt: skip


def step_record(test: int, packages: Sequence[str], label: str, out: Outcome) -> Step:
    """One test's record from how its rounds ended (pure)."""
    d = out.decision
    return Step(
        test=test, packages=tuple(packages), label=label, ratio=Ratio.of(d), rounds=out.rounds,
        verdict=d["verdict"]["text"] + (f"; {out.settle}" if out.settle else ""), call=d["verdict"]["call"],
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Culprit:
    """A package named responsible, with the test that named it."""

    package: str
    version: str
    together_with: tuple[str, ...]  # the extras its environment needed
    step: Step

    def to_json(self) -> dict[str, Any]:
        r = self.step.ratio
        return {"package": self.package, "version": self.version, "with": list(self.together_with),
                "ratio": r.ratio, "ci_low": r.ci_low, "ci_high": r.ci_high, "effect": self.step.verdict}  # fmt: skip


def culprit(package: Mapping[str, Any], others: Sequence[str], step: Step) -> Culprit:
    return Culprit(
        package=package["name"], version=package["version"], together_with=tuple(others), step=step
    )


@dataclass(frozen=True, kw_only=True)
class Counts:
    builds: int = 0
    reused: int = 0
    tests: int = 0
    runs: int = 0

    def to_json(self) -> dict[str, int]:
        return {"builds": self.builds, "reused": self.reused, "tests": self.tests, "runs": self.runs}


@dataclass(frozen=True, kw_only=True)
class Undecided:
    packages: tuple[str, ...]
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {"packages": list(self.packages), "verdict": self.verdict}


@dataclass(frozen=True, kw_only=True)
class Bisection:
    """What `builder bisect` found; `to_json` is the --json document (builder/schemas/bisect.schema.json)."""

    a: dict[str, Any]  # Subject.describe()
    b: dict[str, Any]
    metric: str
    threshold: float
    repeat: int | None
    mode: str
    extras: tuple[tuple[str, str], ...]  # (name, version) of B's packages beyond A
    removed_in_b: tuple[str, ...]
    b_vs_a: Step
    steps: tuple[Step, ...]
    counts: Counts
    culprits: tuple[Culprit, ...] = ()
    undecided: tuple[Undecided, ...] = ()
    conclusion: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "a": self.a, "b": self.b, "metric": self.metric, "threshold": self.threshold,
            "repeat": self.repeat, "mode": self.mode,
            "extras": [{"name": n, "version": v} for n, v in self.extras],
            "removed_in_b": list(self.removed_in_b), "b_vs_a": self.b_vs_a.to_json(),
            "steps": [s.to_json() for s in self.steps], "counts": self.counts.to_json(),
            "culprits": [c.to_json() for c in self.culprits], "undecided": [u.to_json() for u in self.undecided],
            "conclusion": self.conclusion,
        }  # fmt: skip


def conclusion(
    metric: str,
    whole: Step,
    culprits: Sequence[Culprit],
    undecided: Sequence[Undecided],
    counts: Counts,
) -> str:
    """The one line that ends the bisection (pure)."""
    what = METRICS[metric][0]
    if whole.undecided:
        return (f"undecided: cannot tell whether B is slower than A on {what} within the budget "
                f"({whole.verdict}): nothing bisected")  # fmt: skip
    if not whole.slower:
        return f"B is not slower than A on {what} ({whole.verdict}): nothing to bisect"
    if culprits:
        text = "responsible: " + "; ".join(f"{c.package} {c.version}: {c.step.verdict}" for c in culprits)
    else:
        text = ("no single package reproduces B's slowdown on its own: it needs a combination, "
                "or comes from settings (see `builder compare`)")  # fmt: skip
    if undecided:
        text += "; undecided within the budget (neither cleared nor named): " + ", ".join(
            "+".join(u.packages) for u in undecided
        )
    return text + (f"; {counts.builds} builds ({counts.reused} reused), {counts.tests} tests, "
                   f"{counts.runs} runtime processes")  # fmt: skip

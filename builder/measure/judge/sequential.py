"""Sequential rounds: measure interleaved rounds until the headline is decided, within a time budget.

The looks are planned before anything is measured: the verdict is judged after LOOKS[k]
usable rounds, and measuring stops at the first look that decides (slower, faster, or same
within the band) or when the next look's rounds no longer fit in the budget. Each look's
t-interval has error rate 0.05 / len(LOOKS) (Bonferroni): the chance that any of the planned
intervals misses the true ratio is at most 5%, so the interval printed at whatever look the
rule stopped at is a valid 95% interval. A budget that ends early only drops looks, which
keeps the bound. tests/compare/test_power.py checks coverage and power by simulation, with
noise drawn from runs recorded on this machine (tests/compare/fixtures/noise.json).

`--repeat N` is the plan with one look at N rounds: the ordinary 95% interval, the same verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from builder.measure.judge.stats import (
    DEFAULT_MIN_EFFECT,
    LEVEL,
    METHOD,
    MIN_PAIRS,
    mean_sd,
    paired_ratio,
    t_two_sided,
    verdict,
)

# Rounds at which the verdict is judged, about 1.3-1.6x apart: no look before 5 rounds (at 4, the
# Bonferroni t of 7.5 decides only huge effects), and each look costs the others less width than
# with more, earlier looks (simulated with this machine's noise: tests/compare/test_power.py).
LOOKS = (5, 8, 12, 16, 21, 27, 34)
DEFAULT_TIME_S = 300.0
DECIDED = ("slower", "faster", "same")


@dataclass(frozen=True, kw_only=True)
class Plan:
    looks: tuple[int, ...]
    # each look's share of the error rate (equal by default); any split keeps the union bound
    weights: tuple[float, ...] | None = None
    level: float = LEVEL

    def alpha_at(self, k: int) -> float:
        """The error rate of look k's interval."""
        w = self.weights or (1.0,) * len(self.looks)
        return (1 - self.level) * w[k] / sum(w)

    @property
    def method(self) -> str:
        if len(self.looks) == 1:
            return METHOD
        levels = ", ".join(f"{100 * (1 - self.alpha_at(k)):.2f}%" for k in range(len(self.looks)))
        return (
            f"{METHOD}, sequential: judged after {', '.join(map(str, self.looks))} rounds until decided, "
            f"the looks' intervals at {levels} (Bonferroni over {len(self.looks)} looks), so the printed "
            f"interval is a {100 * self.level:.0f}% interval whichever look it stopped at"
        )


SEQUENTIAL = Plan(looks=LOOKS)


def fixed_plan(rounds: int) -> Plan:
    """`--repeat N`: one look, at N rounds."""
    return Plan(looks=(rounds,))


def judge(
    a: Sequence[float | None],
    b: Sequence[float | None],
    plan: Plan,
    *,
    look: int = 0,
    min_effect: float = DEFAULT_MIN_EFFECT,
    what: str = "B",
) -> dict[str, Any]:
    """The ratio B/A with its interval at the level of the plan's look number `look`, and the verdict (pure)."""
    stat = paired_ratio(a, b, alpha=plan.alpha_at(look), method=plan.method)
    return {**stat, "verdict": verdict(stat, min_effect=min_effect, what=what)}


def settles(mean: float, sd: float, n: int, alpha: float, min_effect: float) -> bool:
    """Would an interval of this mean and deviation at n rounds and error rate alpha decide (pure)?"""
    half = t_two_sided(alpha, n - 1) * sd / math.sqrt(n)
    up, down = math.log1p(min_effect), math.log1p(-min_effect) if min_effect < 1 else -math.inf
    return mean - half > up or mean + half < down or (mean - half >= down and mean + half <= up)


def what_would_settle(
    logs: Sequence[float], plan: Plan, *, min_effect: float, round_s: float | None, spent_s: float
) -> str:
    """For an inconclusive verdict: the rounds (and --time) that would decide if the effect and the
    noise stay as measured, or why no planned look would (pure).

    >>> what_would_settle([0.2, 0.1, 0.3, 0.15], SEQUENTIAL, min_effect=0.05, round_s=10.0, spent_s=60.0)
    'about 8 rounds would settle it if the effect and the noise stay as measured: --time 100 or more'
    """
    if len(logs) < MIN_PAIRS:
        return "too few rounds completed to estimate the noise: check the runs' errors above"
    mean, sd = mean_sd(logs)
    n = len(logs)
    target = plan if len(plan.looks) > 1 else SEQUENTIAL
    later = [(k, target.alpha_at(i)) for i, k in enumerate(target.looks) if k > n]
    need = next((k for k, alpha in later if settles(mean, sd, k, alpha, min_effect)), None)
    if need is None:
        return (
            f"at this noise ({100 * sd:.0f}% per round) even {target.looks[-1]} rounds would not settle it: "
            "a longer workload (--seconds), a quieter machine, or a larger --min-effect"
        )
    more = (
        f": --time {math.ceil((spent_s + (need - n) * round_s) / 10) * 10} or more"
        if round_s and len(plan.looks) > 1
        else " (run without --repeat to measure until decided)"
    )
    return f"about {need} rounds would settle it if the effect and the noise stay as measured{more}"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the rounds decided: the last look's interval and verdict, and why measuring stopped."""

    decision: dict[str, Any]
    rounds: int  # rounds measured (a failed run's round included)
    looks: tuple[int, ...]  # usable rounds at each look taken
    stopped: str  # "decided", "time" (the next look did not fit), "last look", "failures"
    elapsed_s: float
    round_s: float | None  # mean seconds per round
    settle: str | None  # for an inconclusive verdict: what would settle it
    pairs: list[tuple[float | None, float | None]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.decision["verdict"]["call"],
            "text": self.decision["verdict"]["text"],
            "ratio": self.decision.get("ratio"),
            "ci_low": self.decision.get("ci_low"),
            "ci_high": self.decision.get("ci_high"),
            "rounds": self.rounds,
            "looks": list(self.looks),
            "stopped": self.stopped,
            "elapsed_s": round(self.elapsed_s, 1),
            "round_s": round(self.round_s, 2) if self.round_s is not None else None,
            "settle": self.settle,
        }


def _both(x: float | None, y: float | None) -> bool:
    return x is not None and y is not None and x > 0 and y > 0


# One round: measure A and B once each (the order alternating by round index); returns the headline
# figure of each (None for a failed run) and the seconds the round took.
Round = Callable[[int], tuple[tuple[float | None, float | None], float]]


def run_rounds(
    measure_round: Round,
    plan: Plan,
    *,
    budget_s: float = math.inf,
    spent_s: float = 0.0,
    min_effect: float = DEFAULT_MIN_EFFECT,
    what: str = "B",
) -> Outcome:
    """Measure rounds up to each planned look, judge there, stop when decided or when the next
    look's rounds would overrun `budget_s` (`spent_s` of it already used, by the warm-up). The
    first look is always measured. Pure apart from what `measure_round` does."""
    pairs: list[tuple[float | None, float | None]] = []
    elapsed, looks = spent_s, list[int]()
    decision: dict[str, Any] | None = None
    stopped = "last look"
    for k, look in enumerate(plan.looks):
        usable = sum(1 for x, y in pairs if _both(x, y))
        if looks and pairs and elapsed + (look - usable) * (elapsed - spent_s) / len(pairs) > budget_s:
            stopped = "time"
            break
        while usable < look and len(pairs) < 2 * look:  # a round of failed runs counts, up to a point
            (x, y), seconds = measure_round(len(pairs))
            pairs.append((x, y))
            elapsed += seconds
            usable += _both(x, y)
        if usable < look:
            stopped = "failures"
            break
        decision = judge(
            [p[0] for p in pairs], [p[1] for p in pairs], plan, look=k, min_effect=min_effect, what=what
        )
        looks.append(usable)
        if decision["verdict"]["call"] in DECIDED:
            stopped = "decided"
            break
    if decision is None:
        decision = judge([p[0] for p in pairs], [p[1] for p in pairs], plan, min_effect=min_effect, what=what)
    round_s = (elapsed - spent_s) / len(pairs) if pairs else None
    settle = None
    if decision["verdict"]["call"] == "inconclusive":
        logs = [math.log(y / x) for x, y in pairs if x is not None and y is not None and _both(x, y)]
        settle = what_would_settle(logs, plan, min_effect=min_effect, round_s=round_s, spent_s=elapsed)
    return Outcome(
        decision=decision,
        rounds=len(pairs),
        looks=tuple(looks),
        stopped=stopped,
        elapsed_s=elapsed,
        round_s=round_s,
        settle=settle,
        pairs=pairs,
    )

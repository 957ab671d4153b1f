"""`builder bisect`: which of B's extra packages make B slower than A.

B is A plus packages (minimal vs extended). Intermediate environments are A's exact packages plus
a subset of B's extras (with the extras that subset depends on), installed with uv from its cache
(take/environments.py); each is measured against A in interleaved rounds. A subset that is not
slower is cleared whole; a slower one is split in two, down to single packages; a single package
is named only when a second measurement confirms it. Each test is the compare decision
(judge/sequential.py): a subset that cannot be decided within its budget is reported as
undecided, never cleared. The decisions are judge/bisect.py's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from builder.errors import InputError
from builder.log import Log
from builder.measure.judge.bisect import (
    Bisection,
    Counts,
    Culprit,
    Step,
    Undecided,
    closure,
    conclusion,
    culprit,
    extras_of,
    step_record,
)
from builder.measure.judge.sequential import SEQUENTIAL, Plan, fixed_plan, run_rounds
from builder.measure.take.environments import build_env, installed
from builder.measure.take.metrics import METRIC_ALIASES, METRICS, figure
from builder.measure.take.runs import RunOptions, one_round, warm_up
from builder.measure.take.subject import Subject
from builder.paths import Project

STEP_TIME_S = 120.0  # each test's budget when rounds are sequential (no --repeat)


@dataclass(kw_only=True)
class _Search:
    """One bisection's state: A, B's packages, the tests so far (mutable while it runs; the
    Bisection it ends with is frozen)."""

    a: Subject
    key: str
    opts: RunOptions
    plan: Plan
    repeat: int | None
    step_time_s: float
    threshold: float
    a_pkgs: dict[str, dict[str, Any]]
    b_pkgs: dict[str, dict[str, Any]]
    extras: list[str]
    work: Path
    find_links: Sequence[Path]
    log: Log
    counts: dict[str, int] = field(default_factory=lambda: {"builds": 0, "reused": 0, "tests": 0, "runs": 0})
    steps: list[Step] = field(default_factory=list)
    undecided: list[Undecided] = field(default_factory=list)

    def measure(self, rt: Subject, what: str, packages: Sequence[str], confirm: bool = False) -> Step:
        """One test: `rt` against A until decided (or the step's budget is spent)."""
        self.counts["tests"] += 1
        plan = fixed_plan(2 * self.repeat) if self.repeat and confirm else self.plan

        def one(i: int) -> tuple[tuple[float | None, float | None], float]:
            t0 = time.monotonic()
            ra, rx = one_round(self.a, rt, i, opts=self.opts, log=self.log)
            self.counts["runs"] += 2 * (int(self.opts.startup) + int(self.opts.separation))
            return (figure(ra, self.key), figure(rx, self.key)), time.monotonic() - t0

        out = run_rounds(one, plan, budget_s=self.step_time_s, min_effect=self.threshold, what=what)
        step = step_record(self.counts["tests"], packages, rt.label, out)
        self.steps.append(step)
        self.log.line(f"==> test {self.counts['tests']}: {rt.label}: {step.verdict}")
        return step

    def test_subset(self, subset: list[str]) -> tuple[Step, list[str], Subject]:
        """A + the subset (and the extras it needs) against A; an undecided test is kept."""
        env_pkgs = closure(subset, self.b_pkgs, self.extras)
        rt, built = build_env(self.a, self.a_pkgs, self.b_pkgs, env_pkgs, work=self.work,
                              find_links=self.find_links, log=self.log)  # fmt: skip
        self.counts["builds" if built else "reused"] += 1
        return self.judged(rt, subset, env_pkgs), env_pkgs, rt

    def judged(self, rt: Subject, subset: list[str], env_pkgs: list[str], confirm: bool = False) -> Step:
        step = self.measure(rt, "A+" + ",".join(subset), env_pkgs, confirm=confirm)
        if step.undecided:
            self.undecided.append(Undecided(packages=tuple(subset), verdict=step.verdict))
        return step

    def search(self, subset: list[str]) -> list[Culprit]:
        """The packages of `subset` responsible, halving a slower subset down to single packages;
        a single package is named only if a second measurement agrees (noise happens)."""
        step, env_pkgs, rt = self.test_subset(subset)
        if not step.slower:
            return []
        if len(subset) > 1:
            half = len(subset) // 2
            return self.search(subset[:half]) + self.search(subset[half:])
        confirmed = self.judged(rt, subset, env_pkgs, confirm=True)
        if not confirmed.slower:
            return []
        return [culprit(self.b_pkgs[subset[0]], [p for p in env_pkgs if p != subset[0]], confirmed)]

    def culprits(self, whole: Step) -> list[Culprit]:
        """B as a whole is slower: one extra is that extra; more are searched half by half."""
        if len(self.extras) == 1:
            return [culprit(self.b_pkgs[self.extras[0]], [], whole)]
        half = len(self.extras) // 2
        return self.search(self.extras[:half]) + self.search(self.extras[half:]) if self.extras else []


def _options(a: Subject, b: Subject, key: str, opts: RunOptions | None, log: Log) -> RunOptions:
    """Only the process the metric needs; the workload sized once, from A and B, for every step."""
    base = opts or RunOptions()
    opts = replace(
        base, startup=key in ("startup_s", "import_s"), separation=key in ("separation_s", "total_s")
    )
    if opts.seconds is None:
        opts = warm_up((a, b), opts, log)[0] if opts.separation else replace(opts, seconds=1.0)
    return opts


def bisect_runtimes(
    a: Subject,
    b: Subject,
    project: Project,
    *,
    metric: str = "startup",
    threshold: float = 0.05,
    repeat: int | None = 3,
    step_time_s: float = STEP_TIME_S,
    opts: RunOptions | None = None,
    find_links: Sequence[Path] = (),
    log: Log | None = None,
) -> Bisection:
    log = log or Log()
    if a.kind != "venv" or b.kind != "venv":
        raise InputError(
            "bisect needs venvs or profiles for A and B (a frozen dist cannot be re-installed)",
            hint="pass the profiles' venvs, e.g. build/P/venv, or the profile names",
        )
    key = METRIC_ALIASES[metric]
    a_pkgs, b_pkgs = installed(a.path), installed(b.path)
    s = _Search(
        a=a, key=key, opts=_options(a, b, key, opts, log), plan=fixed_plan(repeat) if repeat else SEQUENTIAL,
        repeat=repeat, step_time_s=step_time_s, threshold=threshold, a_pkgs=a_pkgs, b_pkgs=b_pkgs,
        extras=extras_of(a_pkgs, b_pkgs), work=project.work / "bisect", find_links=find_links, log=log,
    )  # fmt: skip
    log.line(f"==> bisect on {METRICS[key][0]}: {len(s.extras)} packages in B beyond A: "
             f"{', '.join(s.extras) or 'none'}")  # fmt: skip
    whole = s.measure(b, "B", s.extras)
    decided = not whole.undecided and whole.slower
    culprits = s.culprits(whole) if decided else []
    counts = Counts(**s.counts)
    return Bisection(
        a=a.describe(), b=b.describe(), metric=key, threshold=threshold, repeat=repeat,
        mode=f"fixed: {repeat} rounds per test" if repeat
        else f"sequential: each test until decided, up to {step_time_s:g} s",
        extras=tuple((b_pkgs[n]["name"], b_pkgs[n]["version"]) for n in s.extras),
        removed_in_b=tuple(sorted(set(a_pkgs) - set(b_pkgs))), b_vs_a=whole, steps=tuple(s.steps),
        counts=counts, culprits=tuple(culprits), undecided=tuple(s.undecided),
        conclusion=conclusion(key, whole, culprits, s.undecided, counts),
    )  # fmt: skip

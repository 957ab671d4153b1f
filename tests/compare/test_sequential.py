"""The stopping rule that compare, bisect and tune share: rounds until decided, within a budget."""

from __future__ import annotations

import math

from builder.measure.judge.sequential import SEQUENTIAL, fixed_plan, run_rounds, what_would_settle
from builder.measure.judge.stats import paired_ratio, t_two_sided
from builder.measure.take.runs import RunOptions, sized_options


def _rounds(ratios: list[float], seconds: float = 10.0):
    """A round measures A = 1.0 and B = ratios[i], and takes `seconds`; the calls are recorded."""
    calls: list[int] = []

    def measure(i: int) -> tuple[tuple[float | None, float | None], float]:
        calls.append(i)
        return (1.0, ratios[i % len(ratios)]), seconds

    return measure, calls


def test_a_clear_slowdown_stops_at_the_first_look() -> None:
    measure, calls = _rounds([1.9, 2.0, 2.1, 2.05])
    out = run_rounds(measure, SEQUENTIAL, budget_s=300)
    assert out.decision["verdict"]["call"] == "slower" and out.stopped == "decided"
    assert calls == [0, 1, 2, 3, 4] and out.looks == (5,) and out.settle is None
    assert out.to_json()["verdict"] == "slower" and out.to_json()["rounds"] == 5


def test_the_sequential_interval_is_wider_than_one_look_of_the_same_rounds() -> None:
    """Each look pays for the others (Bonferroni): at 5 rounds, t at 0.05/7 instead of 0.05."""
    ratios = [1.9, 2.0, 2.1, 2.05, 1.95]
    out = run_rounds(_rounds(ratios)[0], SEQUENTIAL, budget_s=300)
    one = paired_ratio([1.0] * 5, ratios)
    assert out.decision["ci_low"] < one["ci_low"] and out.decision["ci_high"] > one["ci_high"]
    assert t_two_sided(0.05 / len(SEQUENTIAL.looks), 4) > 1.5 * t_two_sided(0.05, 4)
    assert "Bonferroni over 7 looks" in out.decision["method"]


def test_an_undecided_headline_runs_until_the_budget_and_says_inconclusive() -> None:
    # B/A wobbles between 0.9 and 1.3: neither outside nor inside the ±5% band at any look
    measure, calls = _rounds([0.9, 1.3, 1.0, 1.25, 0.95, 1.2])
    out = run_rounds(measure, SEQUENTIAL, budget_s=120, spent_s=20)
    assert out.decision["verdict"]["call"] == "inconclusive" and out.stopped == "time"
    # the looks at 5 and 8 rounds fit in (120 - 20) s at 10 s a round; the one at 12 would not
    assert out.looks == (5, 8) and len(calls) == 8 and out.elapsed_s == 100
    assert out.settle and ("--time" in out.settle or "--seconds" in out.settle)
    assert "neither outside nor inside the ±5% band" in out.decision["verdict"]["text"]


def test_a_tight_zero_is_same_and_a_loose_one_never_is() -> None:
    tight = run_rounds(_rounds([1.0, 1.01, 0.99, 1.0, 1.005, 0.995])[0], SEQUENTIAL, budget_s=300)
    assert tight.decision["verdict"]["call"] == "same" and tight.stopped == "decided"
    assert 0.95 <= tight.decision["ci_low"] and tight.decision["ci_high"] <= 1.05
    loose = run_rounds(_rounds([0.8, 1.25, 1.0, 0.85, 1.2])[0], SEQUENTIAL, budget_s=300)
    assert loose.decision["verdict"]["call"] == "inconclusive"


def test_repeat_is_one_look_with_the_ordinary_interval() -> None:
    ratios = [1.1, 1.3, 1.2, 1.25, 1.15]
    measure, calls = _rounds(ratios)
    out = run_rounds(measure, fixed_plan(5))
    assert len(calls) == 5 and out.stopped in ("decided", "last look")
    one = paired_ratio([1.0] * 5, ratios)
    assert (out.decision["ci_low"], out.decision["ci_high"]) == (one["ci_low"], one["ci_high"])


def test_failed_runs_do_not_count_as_rounds_and_do_not_loop_forever() -> None:
    def measure(i: int) -> tuple[tuple[float | None, float | None], float]:
        return (None, 1.0), 1.0

    out = run_rounds(measure, SEQUENTIAL, budget_s=300)
    assert out.stopped == "failures" and out.rounds == 10 and out.decision["verdict"]["call"] == "unknown"


def test_what_would_settle_names_the_rounds_or_the_workload() -> None:
    logs = [0.2, 0.1, 0.3, 0.15]
    text = what_would_settle(logs, SEQUENTIAL, min_effect=0.05, round_s=10.0, spent_s=60.0)
    assert text.startswith("about 8 rounds") and "--time 100" in text
    # an effect right at the band's edge cannot be settled by any planned look
    edge = [math.log(1.05) + d for d in (0.1, -0.1, 0.05, -0.05)]
    assert "--seconds" in what_would_settle(edge, SEQUENTIAL, min_effect=0.05, round_s=10.0, spent_s=60.0)


def test_the_workload_is_sized_from_the_faster_warm_up_run() -> None:
    warm = [
        {"separation_s": 1.2, "audio_seconds": 2.0},  # 0.6 s per audio second
        {"separation_s": 2.4, "audio_seconds": 2.0},
        {"failed": "no JSON"},
    ]
    assert sized_options(RunOptions(seconds=None), warm).seconds == 4.5  # 2.5 s / 0.6, to the half second
    assert sized_options(RunOptions(seconds=3.0), warm).seconds == 3.0  # given: kept
    assert sized_options(RunOptions(seconds=None), [{"failed": "x"}]).seconds == 2.0  # nothing to size from

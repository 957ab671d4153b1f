"""Statistics over measured runs (pure): spreads, paired ratios with a CI, verdicts."""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# --- statistics over runs -------------------------------------------------------------

DEFAULT_MIN_EFFECT = 0.05
BOOTSTRAP = 4000
MIN_PAIRS = 3  # fewer rounds give no interval worth the name


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "iqr": None}
    q = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) >= 2 else [vals[0]] * 3
    return {
        "n": len(vals),
        "median": round(statistics.median(vals), 4),
        "min": round(vals[0], 4),
        "max": round(vals[-1], 4),
        "iqr": round(q[2] - q[0], 4),
    }


def paired_ratio(
    a: Sequence[float | None], b: Sequence[float | None], *, resamples: int = BOOTSTRAP, seed: int = 0
) -> dict[str, Any]:
    """Ratio median(B)/median(A) with a 95% percentile bootstrap CI over paired rounds.

    Pairs (a[i], b[i]) come from the same round, so they are resampled together: what
    disturbed both sides of a round (another process, a cache flush) stays paired.

    >>> r = paired_ratio([1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.2, 1.8, 2.1, 2.0])
    >>> r["ratio"], r["ci_low"] > 1.5
    (2.0, True)
    """
    pairs = [(x, y) for x, y in zip(a, b, strict=False) if x is not None and y is not None and x > 0]
    if len(pairs) < MIN_PAIRS:
        return {"n": len(pairs), "ratio": None, "ci_low": None, "ci_high": None}
    ratio = statistics.median(y for _, y in pairs) / statistics.median(x for x, _ in pairs)
    rng = random.Random(seed)
    boots = []
    n = len(pairs)
    for _ in range(resamples):
        sample = [pairs[rng.randrange(n)] for _ in range(n)]
        den = statistics.median(x for x, _ in sample)
        boots.append(statistics.median(y for _, y in sample) / den)
    boots.sort()
    lo, hi = boots[int(0.025 * resamples)], boots[min(resamples - 1, int(0.975 * resamples))]
    return {"n": n, "ratio": round(ratio, 4), "ci_low": round(lo, 4), "ci_high": round(hi, 4)}


def verdict(
    stat: Mapping[str, Any], *, min_effect: float = DEFAULT_MIN_EFFECT, what: str = "B"
) -> dict[str, Any]:
    """'slower' / 'faster' only when the CI excludes 1.0 and the effect is at least min_effect.

    >>> verdict({"n": 5, "ratio": 1.12, "ci_low": 1.08, "ci_high": 1.16})["text"]
    'B is 12% slower (95% CI 8–16%)'
    >>> verdict({"n": 5, "ratio": 1.01, "ci_low": 0.97, "ci_high": 1.05})["text"]
    'no difference detected (B/A 1.01, 95% CI 0.97–1.05)'
    """
    r, lo, hi = stat.get("ratio"), stat.get("ci_low"), stat.get("ci_high")
    if r is None:
        return {
            "call": "unknown",
            "text": f"not enough runs (n={stat.get('n', 0)}; need at least {MIN_PAIRS} rounds)",
        }
    assert lo is not None and hi is not None  # a ratio always comes with its interval

    def pct(v: float) -> str:
        return f"{abs(v - 1) * 100:.0f}%"

    if lo > 1 and r - 1 >= min_effect:
        return {"call": "slower", "text": f"{what} is {pct(r)} slower (95% CI {pct(lo)[:-1]}–{pct(hi)})"}
    if hi < 1 and 1 - r >= min_effect:
        speedup = f", {1 / r:.1f}x" if r < 0.5 else ""
        return {
            "call": "faster",
            "text": f"{what} is {pct(r)} faster (95% CI {pct(hi)[:-1]}–{pct(lo)}{speedup})",
        }
    note = ""
    if lo > 1 or hi < 1:
        note = f"; below the {min_effect * 100:.0f}% minimum effect"
    return {"call": "same", "text": f"no difference detected (B/A {r:.2f}, 95% CI {lo:.2f}–{hi:.2f}{note})"}

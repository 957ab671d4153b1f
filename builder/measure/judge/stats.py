"""Statistics over measured runs (pure): spreads, paired ratios with a CI, verdicts.

The interval: rounds are paired (A and B run back to back, the order alternating), so what
disturbed a round (another process, a cache flush) is in both of its runs. The ratio of one
round, b/a, cancels that; its logarithm is close to normal for timings. So the CI is a
Student t-interval on the per-round log ratios, turned back into a ratio: the geometric mean
ratio exp(mean) with exp(mean ± t·sd/√n). Its coverage is checked by simulation
(tests/compare/test_stats_coverage.py): about 95% at n = 5, where the percentile bootstrap
of medians this replaces covered the true ratio about 74% of the time at n = 3.

The verdict has three answers, by where the interval lies against the minimum-effect band
[1 - m, 1 + m]: outside it ("B is X% slower/faster"), inside it ("same within ±m"), or across
its edge ("inconclusive"). A wide interval is never "same".
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# --- statistics over runs -------------------------------------------------------------

DEFAULT_MIN_EFFECT = 0.05
LEVEL = 0.95
# The t-interval needs a spread estimate (n >= 2); with n = 2 it has one degree of freedom
# (t = 12.7): exact only for exactly normal noise and too wide to tell anything. 3 is our floor.
MIN_PAIRS = 3
# (the level is not in the name: a report with too few rounds prints no "95%" anywhere)
METHOD = f"Student t-interval on the per-round log ratios log(B/A) (paired rounds, needs n >= {MIN_PAIRS})"

# Two-sided 95% Student t quantiles t(0.975, df) for df = 1..30; beyond, a Cornish-Fisher series.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959964


def t_quantile(df: int) -> float:
    """t(0.975, df): a table to 30 degrees of freedom, then the expansion around the normal.

    >>> t_quantile(4), round(t_quantile(200), 3)
    (2.776, 1.972)
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def t_two_sided(alpha: float, df: int) -> float:
    """The t with P(|T| > t) = alpha for Student's T with `df` degrees of freedom, from the exact
    CDF for integer df (Abramowitz & Stegun 26.7.3-4) by bisection: the Bonferroni levels of
    sequential looks (alpha = 0.05 / looks) are beyond any table.

    >>> round(t_two_sided(0.05, 4), 3), round(t_two_sided(0.05 / 8, 9), 3)
    (2.776, 3.547)
    """
    return _t_two_sided(round(alpha, 12), df)


@functools.lru_cache(maxsize=4096)
def _t_two_sided(alpha: float, df: int) -> float:
    if df < 1 or not 0 < alpha < 1:
        raise ValueError(f"need df >= 1 and 0 < alpha < 1, got df={df}, alpha={alpha}")
    lo, hi = 0.0, 1.0
    while _t_inside(hi, df) < 1 - alpha:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_inside(mid, df) < 1 - alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10 * hi:
            break
    return (lo + hi) / 2


def _t_inside(t: float, df: int) -> float:
    """P(|T| <= t) for integer df: a finite series in cos(theta), theta = atan(t / sqrt(df))."""
    theta = math.atan(t / math.sqrt(df))
    c2, term, total = math.cos(theta) ** 2, 1.0, 1.0
    if df % 2 == 0:
        for k in range(2, df, 2):  # 1 + 1/2 c^2 + 1*3/(2*4) c^4 + ...
            term *= c2 * (k - 1) / k
            total += term
        return math.sin(theta) * total
    if df == 1:
        return 2 * theta / math.pi
    for k in range(3, df, 2):  # 1 + 2/3 c^2 + 2*4/(3*5) c^4 + ...
        term *= c2 * (k - 1) / k
        total += term
    return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)


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


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample deviation in floating point (statistics.stdev is exact and slow: the
    power simulation calls this tens of thousands of times)."""
    n = len(values)
    mean = math.fsum(values) / n
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def log_ratio_interval(logs: Sequence[float], alpha: float = 1 - LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) of the two-sided 1 - alpha t-interval for the mean of `logs` (len >= 2)."""
    n = len(logs)
    mean, sd = mean_sd(logs)
    t = t_quantile(n - 1) if math.isclose(alpha, 1 - LEVEL) else t_two_sided(alpha, n - 1)
    half = t * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_ratio(
    a: Sequence[float | None],
    b: Sequence[float | None],
    *,
    alpha: float = 1 - LEVEL,
    method: str = METHOD,
) -> dict[str, Any]:
    """The ratio B/A over paired rounds (geometric mean of b[i]/a[i]) with its 95% t-interval.

    Pairs with a missing or non-positive value are left out. Fewer than MIN_PAIRS pairs give
    no ratio and no interval (`verdict` then says how many rounds are needed). `alpha`: the
    interval's own error rate (a sequential look's share of the 5%), `method` says which.

    >>> r = paired_ratio([1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.2, 1.8, 2.1, 2.0])
    >>> r["ratio"], r["ci_low"] > 1.9, r["ci_high"] < 2.1
    (2.0, True, True)
    """
    pairs = [
        (x, y) for x, y in zip(a, b, strict=False) if x is not None and y is not None and x > 0 and y > 0
    ]
    if len(pairs) < MIN_PAIRS:
        return {"n": len(pairs), "ratio": None, "ci_low": None, "ci_high": None, "method": method}
    mean, lo, hi = log_ratio_interval([math.log(y / x) for x, y in pairs], alpha)
    return {
        "n": len(pairs),
        "ratio": round(math.exp(mean), 4),
        "ci_low": round(math.exp(lo), 4),
        "ci_high": round(math.exp(hi), 4),
        "median_ratio": round(
            statistics.median(y for _, y in pairs) / statistics.median(x for x, _ in pairs), 4
        ),
        "method": method,
    }


@dataclass(frozen=True, kw_only=True)
class Ratio:
    """B/A over paired rounds with its interval: paired_ratio's figures, as a decision carries them."""

    n: int
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    method: str
    median_ratio: float | None = None  # absent without enough pairs

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> Ratio:
        return cls(
            n=int(d.get("n", 0)), ratio=d.get("ratio"), ci_low=d.get("ci_low"), ci_high=d.get("ci_high"),
            method=str(d.get("method", "")), median_ratio=d.get("median_ratio"),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "ratio": self.ratio,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }
        if self.median_ratio is not None:
            out["median_ratio"] = self.median_ratio
        return {**out, "method": self.method}


def verdict(
    stat: Mapping[str, Any], *, min_effect: float = DEFAULT_MIN_EFFECT, what: str = "B"
) -> dict[str, Any]:
    """Three answers by the interval against the band [1 - min_effect, 1 + min_effect]: outside it
    ('slower' / 'faster'), inside it ('same'), or across its edge ('inconclusive'); 'unknown'
    without an interval. A wide interval is never 'same'.

    >>> verdict({"n": 5, "ratio": 1.12, "ci_low": 1.08, "ci_high": 1.16})["text"]
    'B is 12% slower (95% CI 8–16%)'
    >>> verdict({"n": 9, "ratio": 1.01, "ci_low": 0.98, "ci_high": 1.04})["text"]
    'same within ±5% (B/A 1.01, 95% CI 0.98–1.04)'
    >>> verdict({"n": 5, "ratio": 1.23, "ci_low": 0.97, "ci_high": 1.56})["text"]
    'inconclusive (B/A 1.23, 95% CI 0.97–1.56: neither outside nor inside the ±5% band)'
    >>> verdict({"n": 2, "ratio": None, "ci_low": None, "ci_high": None})["text"]
    'no interval: 2 paired rounds, the t-interval needs at least 3 (use --repeat 5 or more)'
    """
    r, lo, hi = stat.get("ratio"), stat.get("ci_low"), stat.get("ci_high")
    if r is None:
        return {
            "call": "unknown",
            "text": f"no interval: {stat.get('n', 0)} paired rounds, the t-interval needs at least "
            f"{MIN_PAIRS} (use --repeat 5 or more)",
        }
    assert lo is not None and hi is not None  # a ratio always comes with its interval
    band = f"±{min_effect * 100:.0f}%"

    def pct(v: float) -> str:
        return f"{abs(v - 1) * 100:.0f}%"

    if lo > 1 + min_effect:
        return {"call": "slower", "text": f"{what} is {pct(r)} slower (95% CI {pct(lo)[:-1]}–{pct(hi)})"}
    if hi < 1 - min_effect:
        speedup = f", {1 / r:.1f}x" if r < 0.5 else ""
        return {
            "call": "faster",
            "text": f"{what} is {pct(r)} faster (95% CI {pct(hi)[:-1]}–{pct(lo)}{speedup})",
        }
    if lo >= 1 - min_effect and hi <= 1 + min_effect:
        return {"call": "same", "text": f"same within {band} (B/A {r:.2f}, 95% CI {lo:.2f}–{hi:.2f})"}
    return {
        "call": "inconclusive",
        "text": f"inconclusive (B/A {r:.2f}, 95% CI {lo:.2f}–{hi:.2f}: neither outside nor inside the {band} band)",
    }

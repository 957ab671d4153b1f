"""bisect's decisions (pure): B's extra packages, the closure a subset needs, each test's record,
the packages named responsible, and the conclusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from builder.measure.judge.sequential import Outcome
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


def step_record(test: int, packages: Sequence[str], label: str, out: Outcome) -> dict[str, Any]:
    """One test's record: the subset's environment against A, and its call (pure). A test that is
    neither slower, faster nor inside the band is undecided, never cleared as if it were the same."""
    d = out.decision
    call = d["verdict"]["call"]
    return {
        "test": test,
        "packages": list(packages),
        "label": label,
        **{k: v for k, v in d.items() if k != "verdict"},
        "rounds": out.rounds,
        "verdict": d["verdict"]["text"] + (f"; {out.settle}" if out.settle else ""),
        "call": call,
        "slower": call == "slower",
        "undecided": call not in ("slower", "faster", "same"),
    }


def culprit(package: Mapping[str, Any], others: Sequence[str], step: Mapping[str, Any]) -> dict[str, Any]:
    """A package named responsible, with the test that named it (pure)."""
    return {
        "package": package["name"],
        "version": package["version"],
        "with": list(others),
        "ratio": step["ratio"],
        "ci_low": step["ci_low"],
        "ci_high": step["ci_high"],
        "effect": step["verdict"],
    }


@dataclass(frozen=True, kw_only=True)
class Bisection:
    """What `builder bisect` found; `to_json` is the --json document (builder/schemas/bisect.schema.json).
    Steps, culprits and counts are the search's records, as it appended them."""

    a: dict[str, Any]
    b: dict[str, Any]
    metric: str
    threshold: float
    repeat: int | None
    mode: str
    extras: list[dict[str, str]]
    removed_in_b: list[str]
    b_vs_a: dict[str, Any]
    steps: list[dict[str, Any]]
    counts: dict[str, int]
    culprits: list[dict[str, Any]] = field(default_factory=list)
    undecided: list[dict[str, Any]] = field(default_factory=list)
    conclusion: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **{k: getattr(self, k) for k in self.__dataclass_fields__}}


def conclusion(
    metric: str,
    whole: Mapping[str, Any],
    culprits: Sequence[Mapping[str, Any]],
    undecided: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int],
) -> str:
    """The one line that ends the bisection (pure)."""
    what = METRICS[metric][0]
    if whole["undecided"]:
        return (f"undecided: cannot tell whether B is slower than A on {what} within the budget "
                f"({whole['verdict']}): nothing bisected")  # fmt: skip
    if not whole["slower"]:
        return f"B is not slower than A on {what} ({whole['verdict']}): nothing to bisect"
    if culprits:
        text = "responsible: " + "; ".join(f"{c['package']} {c['version']}: {c['effect']}" for c in culprits)
    else:
        text = ("no single package reproduces B's slowdown on its own: it needs a combination, "
                "or comes from settings (see `builder compare`)")  # fmt: skip
    if undecided:
        text += "; undecided within the budget (neither cleared nor named): " + ", ".join(
            "+".join(u["packages"]) for u in undecided
        )
    return text + (f"; {counts['builds']} builds ({counts['reused']} reused), {counts['tests']} tests, "
                   f"{counts['runs']} runtime processes")  # fmt: skip

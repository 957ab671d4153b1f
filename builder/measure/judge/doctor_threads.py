"""`builder doctor`'s judgement of the runner's per-thread samples (pure): which threads were pinned,
and which still burned CPU after the job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from builder.measure.take.runner import Sample

LINGER_S = 2.0  # the probe's linger when its document does not say
SETTLE_S = 0.3  # pools may spin a moment after their last task: not counted


def cores_after_job(
    samples: Sequence[Sample], linger_started: float, linger_s: float, main_tid: int | None
) -> dict[int, float]:
    """Each thread's cores over the probe's linger, from SETTLE_S after its start to its end (times as
    the runner's samples give them, seconds since the process started).

    The job is over and the main thread asleep: a thread still on a CPU then is a spinning pool.
    A thread's rate runs from the window's first sample to the last one inside the linger that saw
    it. Samples taken after the linger, while the process exits, are left out: the exit stops
    threads (a spinning onnxruntime pool among them) and stretches the window with no CPU time.
    """
    begin, end = linger_started + SETTLE_S, linger_started + linger_s
    window = [s for s in samples if begin <= s.t <= end]
    if len(window) < 2:
        return {}
    first = window[0]
    after: dict[int, float] = {}
    for tid, c0 in first.threads_cpu_s.items():
        seen = [s for s in window[1:] if tid in s.threads_cpu_s]
        # the main thread is asleep in the probe by construction: not a candidate
        if tid != main_tid and seen and seen[-1].t > first.t:
            after[tid] = round((seen[-1].threads_cpu_s[tid] - c0) / (seen[-1].t - first.t), 2)
    return after


def thread_rows(
    samples: Sequence[Sample],
    mask: Sequence[int] | None,
    probe: Mapping[str, Any] | None,
    *,
    linger_at: float | None,
    main_tid: int | None,
) -> list[dict[str, Any]]:
    """Per thread: CPU seconds over the run, cores used after the job (the probe's linger, which
    started `linger_at` seconds after the process), affinity and whether it is pinned."""
    last: dict[int, float] = {}
    aff: dict[int, tuple[int, ...]] = {}
    for s in samples:  # a thread that exited keeps its last figure
        last.update(s.threads_cpu_s)
        aff.update(s.threads_affinity)
    linger_s = (probe or {}).get("linger_s") or LINGER_S
    after = cores_after_job(samples, linger_at, linger_s, main_tid) if linger_at is not None else {}
    rows = []
    for tid in sorted(last):
        a = aff.get(tid)
        rows.append({
            "tid": tid,
            "cpu_s": round(last[tid], 2),
            "cores_after_job": after.get(tid),
            "affinity": list(a) if a is not None else None,
            "pinned": bool(a is not None and mask is not None and len(a) < len(mask)),
        })  # fmt: skip
    return rows

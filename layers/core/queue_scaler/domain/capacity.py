"""How many instances the backlog needs: per-queue load, tolerance and activation from zero."""

from __future__ import annotations

import math
from dataclasses import dataclass

from queue_scaler.config import PoolConfig
from queue_scaler.domain.models import LimitedBy, Observation
from queue_scaler.domain.text import fmt

# A ratio like 6.000000000001 from float division must not ask for a seventh instance.
_CEIL_EPSILON = 1e-9


@dataclass(frozen=True)
class Load:
    """The pool's load over the queues that could be read."""

    raw_need: float
    backlog: int
    unavailable: tuple[str, ...]
    lines: tuple[str, ...]


def measure(pool: PoolConfig, observation: Observation) -> Load:
    """Sum backlog / target over readable queues; a queue that errored or is missing is unavailable."""
    observed = {q.name: q for q in observation.queues}
    raw_need = 0.0
    backlog_total = 0
    unavailable: list[str] = []
    lines: list[str] = []
    for queue in pool.queues:
        seen = observed.get(queue.name)
        if seen is None or seen.error is not None:
            reason = "not observed" if seen is None else f"unavailable ({seen.error})"
            unavailable.append(queue.name)
            lines.append(f"{queue.name}: {reason}: scale-down blocked")
            continue
        parts = [f"{seen.visible} visible"]
        backlog = seen.visible
        if pool.count_in_flight:
            parts.append(f"{seen.in_flight} in flight")
            backlog += seen.in_flight
        if pool.count_delayed:
            parts.append(f"{seen.delayed} delayed")
            backlog += seen.delayed
        target = pool.target_for(queue)
        ratio = backlog / target
        raw_need += ratio
        backlog_total += backlog
        detail = " + ".join(parts) if len(parts) > 1 else parts[0]
        lines.append(f"{queue.name}: backlog {backlog} ({detail}) / target {fmt(target)} = {fmt(ratio)}")
    return Load(raw_need, backlog_total, tuple(unavailable), tuple(lines))


@dataclass(frozen=True)
class Recommendation:
    value: int
    limited_by: LimitedBy
    line: str


def recommend(pool: PoolConfig, current: int, load: Load) -> Recommendation:
    """The need, held at `current` inside the tolerance band, and gated by activation from zero."""
    need = max(0, math.ceil(load.raw_need - _CEIL_EPSILON))
    head = f"need ceil({fmt(load.raw_need)}) = {need}"
    if current == 0:
        if load.backlog > pool.activation_backlog:
            value = max(need, 1)
            return Recommendation(
                value,
                LimitedBy.NONE,
                f"{head}; from zero: backlog {load.backlog} > activation {fmt(pool.activation_backlog)}, "
                f"recommend {value}",
            )
        limited = LimitedBy.ACTIVATION if need > 0 else LimitedBy.NONE
        return Recommendation(
            0,
            limited,
            f"{head}; from zero: backlog {load.backlog} <= activation "
            f"{fmt(pool.activation_backlog)}, stay at 0",
        )
    ratio = load.raw_need / current
    tail = f"{fmt(load.raw_need)} / {current} = {fmt(ratio)}"
    if abs(ratio - 1) <= pool.tolerance:
        limited = LimitedBy.WITHIN_TOLERANCE if need != current else LimitedBy.NONE
        return Recommendation(
            current, limited, f"{head}; {tail} is within tolerance {fmt(pool.tolerance)}: keep {current}"
        )
    return Recommendation(need, LimitedBy.NONE, f"{head}; {tail} is outside tolerance {fmt(pool.tolerance)}")

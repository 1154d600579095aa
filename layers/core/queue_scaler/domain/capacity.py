"""How many instances the backlog needs: per-queue load, tolerance and activation from zero."""

from __future__ import annotations

import math
from dataclasses import dataclass

from queue_scaler.config import PoolConfig
from queue_scaler.domain.models import LimitedBy, Observation, QueueObservation
from queue_scaler.domain.text import fmt

# A ratio like 6.000000000001 from float division must not ask for a seventh instance, and
# 2.2 / 2 = 1.1000000000000001 must count as within a tolerance of 0.1.
_CEIL_EPSILON = 1e-9


@dataclass(frozen=True)
class Load:
    """The pool's load over the queues that could be read."""

    raw_need: float
    backlog: int
    unavailable: tuple[str, ...]
    lines: tuple[str, ...]
    work: int = 0
    """Messages that occupy or wait for a worker slot: visible + in flight (+ delayed if counted)."""


def queue_backlog(pool: PoolConfig, seen: QueueObservation) -> int:
    """A queue's backlog (CONTRACTS.md section 1): visible, plus in flight and delayed when the pool counts them.

    The one place this rule lives: the decision, the published metrics and the simulator all use it.
    """
    backlog = seen.visible
    if pool.count_in_flight:
        backlog += seen.in_flight
    if pool.count_delayed:
        backlog += seen.delayed
    return backlog


def measure(pool: PoolConfig, observation: Observation) -> Load:
    """Sum backlog / target over readable queues; a queue that errored or is missing is unavailable."""
    observed = {q.name: q for q in observation.queues}
    raw_need = 0.0
    backlog_total = 0
    work = 0
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
        if pool.count_in_flight:
            parts.append(f"{seen.in_flight} in flight")
        if pool.count_delayed:
            parts.append(f"{seen.delayed} delayed")
        backlog = queue_backlog(pool, seen)
        work += seen.visible + seen.in_flight + (seen.delayed if pool.count_delayed else 0)
        target = pool.target_for(queue)
        backlog_total += backlog
        detail = " + ".join(parts) if len(parts) > 1 else parts[0]
        if pool.count_in_flight_as_slots and pool.slots_per_instance < target:
            # A running message holds its slot until it ends, however many messages the target lets
            # one instance carry; the target still sizes the waiting ones. Never below backlog / target.
            waiting = backlog - seen.in_flight
            held = seen.in_flight / pool.slots_per_instance
            ratio = waiting / target + held
            lines.append(
                f"{queue.name}: backlog {backlog} ({detail}): {waiting} waiting / target {fmt(target)} "
                f"= {fmt(waiting / target)} + {seen.in_flight} in flight / {pool.slots_per_instance} slot(s) "
                f"= {fmt(held)}: {fmt(ratio)}"
            )
        else:
            ratio = backlog / target
            lines.append(f"{queue.name}: backlog {backlog} ({detail}) / target {fmt(target)} = {fmt(ratio)}")
        raw_need += ratio
    return Load(raw_need, backlog_total, tuple(unavailable), tuple(lines), work)


def busy_floor(pool: PoolConfig, current: int, value: int, load: Load) -> tuple[int, str | None]:
    """With `keep_busy_instances`, a scale-down stops at the instances the present work occupies."""
    if not pool.keep_busy_instances or value >= current:
        return value, None
    occupied = -(-load.work // pool.slots_per_instance)
    floor = min(current, occupied)
    if value >= floor:
        return value, None
    return floor, (
        f"scale-down floor: {load.work} queued and in-flight message(s) occupy {occupied} instance(s) "
        f"of {pool.slots_per_instance} slot(s): keep {floor}"
    )


@dataclass(frozen=True)
class Recommendation:
    value: int
    limited_by: LimitedBy
    line: str


def recommend(pool: PoolConfig, current: int, load: Load, leaving: int = 0) -> Recommendation:
    """The need, held at `current` inside the tolerance band, gated by activation from zero, and
    topped up by the instances that are leaving when what stays would not cover it."""
    base = _recommend(pool, current, load)
    going = min(leaving, current)
    if going <= 0 or base.value <= current - going:
        return base
    # The leaving instances still hold slots of the desired capacity until they terminate: without
    # them on top, their replacements would start booting only after they are gone.
    value = base.value + going
    line = (
        f"{base.line}; {going} instance(s) leaving (Spot interruption or rebalance): {base.value} + {going} = {value}"
    )
    return Recommendation(value, base.limited_by, line)


def _recommend(pool: PoolConfig, current: int, load: Load) -> Recommendation:
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
            f"{head}; from zero: backlog {load.backlog} <= activation {fmt(pool.activation_backlog)}, stay at 0",
        )
    ratio = load.raw_need / current
    tail = f"{fmt(load.raw_need)} / {current} = {fmt(ratio)}"
    tolerance, which = _tolerance(pool, ratio)
    if abs(ratio - 1) <= tolerance + _CEIL_EPSILON:
        limited = LimitedBy.WITHIN_TOLERANCE if need != current else LimitedBy.NONE
        return Recommendation(current, limited, f"{head}; {tail} is within {which}{fmt(tolerance)}: keep {current}")
    return Recommendation(need, LimitedBy.NONE, f"{head}; {tail} is outside {which}{fmt(tolerance)}")


def _tolerance(pool: PoolConfig, ratio: float) -> tuple[float, str]:
    """The band on the side `ratio` lies: the direction's own tolerance if set, else the pool's."""
    rules = pool.behavior.scale_up if ratio > 1 else pool.behavior.scale_down
    if rules.tolerance is None:
        return pool.tolerance, "tolerance "
    direction = "scale-up" if ratio > 1 else "scale-down"
    return rules.tolerance, f"{direction} tolerance "

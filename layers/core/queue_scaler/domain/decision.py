"""One pool's scaling decision: need, tolerance, activation, stabilization, rate limits, error rule, clamps.

Pure and deterministic: the same request gives the same decision, and every step that shaped the
result leaves a line in the explanation (CONTRACTS.md section 1).
"""

from __future__ import annotations

from queue_scaler.config import PoolConfig
from queue_scaler.domain.behavior import rate_limit, stabilize
from queue_scaler.domain.capacity import busy_floor, measure, recommend
from queue_scaler.domain.models import Decision, DecisionRequest, History, LimitedBy, Observation


def decide(request: DecisionRequest) -> Decision:
    """The decision for a `queue-scaler decide` request."""
    return decide_pool(request.now, request.pool, request.observation, request.history)


def decide_pool(now: float, pool: PoolConfig, observation: Observation, history: History) -> Decision:
    """Desired capacity for `pool` given what was observed at `now` and the pool's recent history."""
    current = observation.fleet.desired
    load = measure(pool, observation)
    lines = list(load.lines)

    rec = recommend(pool, current, load, observation.fleet.leaving)
    lines.append(rec.line)
    limited_by = rec.limited_by
    value = rec.value

    stabilized = stabilize(value, current, now, history, pool.behavior)
    limited = rate_limit(stabilized.value, current, now, history, pool.behavior)
    for step in (stabilized, limited):
        if step.line:
            lines.append(step.line)
        if step.limited_by is not None:
            limited_by = step.limited_by
    value = limited.value

    value, floor_line = busy_floor(pool, current, value, load)
    if floor_line:
        lines.append(floor_line)
        limited_by = LimitedBy.SCALE_DOWN_LIMIT

    if load.unavailable and value < current:
        lines.append(f"scale-down to {value} blocked: {len(load.unavailable)} queue(s) unavailable; keep {current}")
        value = current
        limited_by = LimitedBy.METRICS_UNAVAILABLE

    if value > pool.max_size:
        lines.append(f"clamped to max_size {pool.max_size}")
        value = pool.max_size
        limited_by = LimitedBy.MAX_SIZE
    elif value < pool.min_size:
        lines.append(f"clamped to min_size {pool.min_size}")
        value = pool.min_size
        limited_by = LimitedBy.MIN_SIZE

    lines.append(f"desired {value}" + (f" (limited by {limited_by})" if limited_by != LimitedBy.NONE else ""))
    return Decision(
        pool=pool.name,
        current=current,
        recommendation=rec.value,
        desired=value,
        limited_by=limited_by,
        explanation=lines,
        raw_need=round(load.raw_need, 6),
        backlog=load.backlog,
        unavailable_queues=list(load.unavailable),
    )

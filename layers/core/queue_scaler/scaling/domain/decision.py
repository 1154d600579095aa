"""One pool's scaling decision: one ordered pipeline of rules over the signals' largest proposal.

Each rule takes the value so far and the decision's context and returns one `Step` (value,
`limited_by`, line). The order is CONTRACTS.md section 1's: need, activation from zero, tolerance,
leaving instances, then (the recommendation, which history keeps) stabilization, rate limits, the
keep-busy floor, the unavailable-metrics rule, the instance-refresh hold, a signal's cap (a schedule's
`maximum`) and the clamps. Pure and deterministic: the same request gives the same decision, and
every step that shaped it leaves a line in the explanation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.behavior import rate_limit, stabilize
from queue_scaler.scaling.domain.models import (
    Decision,
    FleetObservation,
    History,
    LimitedBy,
    Observation,
    RefreshState,
    Step,
    WorkSample,
)
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals import Cap, Proposal
from queue_scaler.shared.domain.text import fmt
from queue_scaler.shared.metric_names import Metric

# A ratio like 6.000000000001 from float division must not ask for a seventh instance, and
# 2.2 / 2 = 1.1000000000000001 must count as within a tolerance of 0.1.
_CEIL_EPSILON = 1e-9
#: Above any group's MaxSize (10,000): a need past it is clamped anyway, and a bounded number keeps
#: every later step finite whatever the request's extremes (a tiny target, a huge backlog).
MAX_NEED = 1_000_000_000


@dataclass(frozen=True)
class Context:
    """What every rule may read: the pool, the fleet, the history and the signals' largest proposal."""

    pool: PoolConfig
    now: float
    current: int
    leaving: int
    history: History
    proposal: Proposal
    """The largest proposal, with the pool-wide figures (backlog, unavailable inputs, work)."""
    raw_need: float
    need: int
    group_bounds: tuple[int | None, int | None] = (None, None)
    """The group's own (MaxSize, MinSize) as observed; None where not observed."""
    refresh: RefreshState = "none"
    """The group's instance refresh as observed."""


Rule = Callable[[int, Context], Step]


class DecisionRequest(BaseModel):
    """The input of `queue-scaler decide`: everything a decision depends on, `now` included."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    now: float
    pool: PoolConfig
    observation: Observation
    history: History = Field(default_factory=History)

    @model_validator(mode="after")
    def _queues_known(self) -> DecisionRequest:
        configured = {q.name for q in self.pool.queues}
        for index, queue in enumerate(self.observation.queues):
            if queue.name not in configured:
                raise ValueError(
                    f"observation.queues.{index}.name: {queue.name!r} is not a queue of pool {self.pool.name!r}"
                )
        return self


def _head(ctx: Context) -> str:
    return f"need ceil({fmt(ctx.raw_need)}) = {ctx.need}"


def activation(value: int, ctx: Context) -> Step:
    """From zero: a signal above its activation threshold gives at least 1; none keeps 0 at 0."""
    if ctx.current != 0:
        return Step(value)
    if ctx.proposal.active:
        woken = max(value, 1)
        return Step(woken, LimitedBy.NONE, f"{_head(ctx)}; from zero: {ctx.proposal.activity}, recommend {woken}")
    limited = LimitedBy.ACTIVATION if value > 0 else LimitedBy.NONE
    return Step(0, limited, f"{_head(ctx)}; from zero: {ctx.proposal.activity}, stay at 0")


def tolerance(value: int, ctx: Context) -> Step:
    """Keep `current` while raw need / current lies within the tolerance band of its direction."""
    if ctx.current == 0:
        return Step(value)
    ratio = ctx.raw_need / ctx.current
    tail = f"{fmt(ctx.raw_need)} / {ctx.current} = {fmt(ratio)}"
    band, which = _tolerance(ctx.pool, ratio)
    if abs(ratio - 1) <= band + _CEIL_EPSILON:
        limited = LimitedBy.WITHIN_TOLERANCE if value != ctx.current else LimitedBy.NONE
        return Step(ctx.current, limited, f"{_head(ctx)}; {tail} is within {which}{fmt(band)}: keep {ctx.current}")
    return Step(value, LimitedBy.NONE, f"{_head(ctx)}; {tail} is outside {which}{fmt(band)}")


def _tolerance(pool: PoolConfig, ratio: float) -> tuple[float, str]:
    """The band on the side `ratio` lies: the direction's own tolerance if set, else the pool's."""
    rules = pool.behavior.scale_up if ratio > 1 else pool.behavior.scale_down
    if rules.tolerance is None:
        return pool.tolerance, "tolerance "
    direction = "scale-up" if ratio > 1 else "scale-down"
    return rules.tolerance, f"{direction} tolerance "


def leaving(value: int, ctx: Context) -> Step:
    """Top the recommendation up by the instances leaving when what stays would not cover it."""
    going = min(ctx.leaving, ctx.current)
    if going <= 0 or value <= ctx.current - going:
        return Step(value)
    # The leaving instances still hold slots of the desired capacity until they terminate: without
    # them on top, their replacements would start booting only after they are gone.
    topped = value + going
    line = f"{going} instance(s) leaving (Spot interruption or rebalance): {value} + {going} = {topped}"
    return Step(topped, None, line, joins=True)


def stabilization(value: int, ctx: Context) -> Step:
    """HPA stabilization windows over the recommendations in history (with `stabilize_queue_part`,
    over their queue-driven parts plus what the running messages hold now)."""
    held = ctx.proposal.held if ctx.pool.stabilize_queue_part else None
    return stabilize(value, ctx.current, ctx.now, ctx.history, ctx.pool.behavior, held=held)


def rate_limits(value: int, ctx: Context) -> Step:
    """HPA rate policies over the scale events in history."""
    return rate_limit(value, ctx.current, ctx.now, ctx.history, ctx.pool.behavior)


def busy_floor(value: int, ctx: Context) -> Step:
    """With `keep_busy_instances`, a scale-down stops at the instances the present work occupies."""
    pool = ctx.pool
    if not pool.keep_busy_instances or value >= ctx.current:
        return Step(value)
    work = ctx.proposal.work
    occupied = -(-work // pool.slots_per_instance)
    floor = min(ctx.current, occupied)
    if value >= floor:
        return Step(value)
    return Step(
        floor,
        LimitedBy.SCALE_DOWN_LIMIT,
        f"scale-down floor: {work} queued and in-flight message(s) occupy {occupied} instance(s) "
        f"of {pool.slots_per_instance} slot(s): keep {floor}",
    )


def metrics_unavailable(value: int, ctx: Context) -> Step:
    """An input that could not be read blocks every scale-down."""
    unavailable = ctx.proposal.unavailable
    if not unavailable or value >= ctx.current:
        return Step(value)
    return Step(
        ctx.current,
        LimitedBy.METRICS_UNAVAILABLE,
        f"scale-down to {value} blocked: {len(unavailable)} queue(s) unavailable; keep {ctx.current}",
    )


def instance_refresh(value: int, ctx: Context) -> Step:
    """While an instance refresh runs (or its state is unknown), desired never goes down.

    The refresh launches each replacement before it terminates the old instance (through the
    terminate hook's drain); a lower desired capacity would make Auto Scaling terminate instances the
    refresh is counting on, and AWS warns that scaling in during a refresh can fail it. Raising is
    allowed: AWS applies a higher desired capacity during a refresh. After a refresh that failed, nothing
    is held, and the line says why the older instances stay.
    """
    if ctx.refresh == "failed":
        return Step(
            value,
            None,
            "the last instance refresh failed: instances of an older version stay "
            "until an hour has passed or a refresh is started by hand",
        )
    if ctx.refresh == "none" or value >= ctx.current:
        return Step(value)
    why = "running" if ctx.refresh == "running" else "state unreadable"
    return Step(
        ctx.current,
        LimitedBy.INSTANCE_REFRESH,
        f"scale-down to {value} held: instance refresh {why}; keep {ctx.current}",
    )


def signal_cap(value: int, ctx: Context) -> Step:
    """A cap a signal sets (a schedule's `maximum` in force), applied as Auto Scaling applies a scheduled
    action's MaxSize: over the scale rules before it (stabilization, rate limits, the holds), and
    under the clamps after it (the pool's min_size and the group's MinSize win). The signal never sets
    it below its own floor in force; the recommendation, which history keeps, is not capped, so when
    the cap ends the need is what it was."""
    cap = ctx.proposal.cap
    if cap is None or value <= cap.value:
        return Step(value)
    return Step(cap.value, LimitedBy.MAX_SIZE, f"capped at {cap.value}: {cap.reason}")


def clamps(value: int, ctx: Context) -> Step:
    """Clamp to the pool's [min_size, max_size], then to the group's own MinSize and MaxSize as observed.

    AWS refuses a SetDesiredCapacity outside the group's bounds: a pool configured above its group's
    MaxSize would otherwise fail every change and stay where it is.
    """
    pool = ctx.pool
    step = Step(value)
    if value > pool.max_size:
        step = Step(pool.max_size, LimitedBy.MAX_SIZE, f"clamped to max_size {pool.max_size}")
    elif value < pool.min_size:
        step = Step(pool.min_size, LimitedBy.MIN_SIZE, f"clamped to min_size {pool.min_size}")
    group_max, group_min = ctx.group_bounds
    if group_max is not None and step.value > group_max:
        line = f"clamped to the group's MaxSize {group_max} (the pool's max_size is {pool.max_size})"
        return Step(group_max, LimitedBy.MAX_SIZE, line)
    if group_min is not None and step.value < group_min:
        line = f"clamped to the group's MinSize {group_min} (the pool's min_size is {pool.min_size})"
        return Step(group_min, LimitedBy.MIN_SIZE, line)
    return step


#: The rules that shape the recommendation (what history keeps), in order.
RECOMMEND: Sequence[Rule] = (activation, tolerance, leaving)
#: The rules that turn the recommendation into the desired capacity, in order.
LIMIT: Sequence[Rule] = (
    stabilization,
    rate_limits,
    busy_floor,
    metrics_unavailable,
    instance_refresh,
    signal_cap,
    clamps,
)


def bounded_need(raw_need: float) -> float:
    """The raw need, finite and at most MAX_NEED."""
    return min(raw_need, float(MAX_NEED)) if math.isfinite(raw_need) else float(MAX_NEED)


def ceil_need(raw_need: float) -> int:
    """The pool's need: ceil(raw need), without the float noise that would add an instance."""
    return max(0, math.ceil(bounded_need(raw_need) - _CEIL_EPSILON))


def decide(request: DecisionRequest) -> Decision:
    """The decision for a `queue-scaler decide` request."""
    return decide_pool(request.now, request.pool, request.observation, request.history)


def decide_pool(now: float, pool: PoolConfig, observation: Observation, history: History) -> Decision:
    """Desired capacity for `pool` given what was observed at `now` and the pool's recent history."""
    ignored = history.future_count(now)
    if ignored:
        history = history.as_of(now)
    chosen = [signals.get(name) for name in pool.signals]
    proposals = [signal.need(pool, observation, history, now) for signal in chosen]
    proposal = combine(proposals)
    lines = [line for p in proposals for line in p.lines]
    if len(proposals) > 1:
        each = ", ".join(f"{p.signal} {fmt(p.raw_need)}" for p in proposals)
        lines.append(f"signals: {each}; largest: {proposal.signal}")
    if ignored:
        lines.append(f"ignored {ignored} history entr{'y' if ignored == 1 else 'ies'} dated after now (a clock ahead)")
    raw_need = bounded_need(proposal.raw_need)
    need = ceil_need(raw_need)
    fleet = observation.fleet
    bounds = (fleet.max_size, fleet.min_size)
    ctx = Context(pool, now, fleet.desired, fleet.leaving, history, proposal, raw_need, need, bounds, fleet.refresh)

    value, limited_by = need, LimitedBy.NONE
    value, limited_by = _run(RECOMMEND, value, limited_by, ctx, lines)
    recommendation = value
    value, limited_by = _run(LIMIT, value, limited_by, ctx, lines)

    if fleet.warm_pool is not None:
        lines.append(warm_pool_line(fleet))
    lines.append(f"desired {value}" + (f" (limited by {limited_by})" if limited_by != LimitedBy.NONE else ""))
    return Decision(
        pool=pool.name,
        current=ctx.current,
        recommendation=recommendation,
        desired=value,
        limited_by=limited_by,
        explanation=lines,
        raw_need=round(raw_need, 6),
        backlog=proposal.backlog,
        unavailable_queues=list(proposal.unavailable),
        signal=proposal.signal,
        ignored_history=ignored,
        held=round(proposal.held, 6),
        sample=_remembered(chosen, observation, now),
        figures=figures(proposals),
    )


def figures(proposals: Sequence[Proposal]) -> dict[Metric, float]:
    """Every proposal's figures, and what each proposal that asks for it adds to the need: its
    instances (rounded up as the need is) above the largest of the other proposals', at least 0."""
    out: dict[Metric, float] = {}
    for proposal in proposals:
        out.update(proposal.figures)
        if proposal.added is not None:
            others = max((p.raw_need for p in proposals if p is not proposal), default=0.0)
            out[proposal.added] = max(0, ceil_need(proposal.raw_need) - ceil_need(others))
    return out


def warm_pool_line(fleet: FleetObservation) -> str:
    """The explanation's line for a group with a warm pool: its ready and preparing instances, which
    are outside desired capacity (a scale-out starts the ready ones first, in seconds, not a boot)."""
    state = (fleet.warm_pool or "").lower()
    preparing = f", {fleet.warming} warming" if fleet.warming else ""
    return f"warm pool: {fleet.warmed} {state}{preparing} (outside desired; a scale-out starts them first)"


def _remembered(
    chosen: Sequence[signals.Signal[PoolConfig]], observation: Observation, now: float
) -> WorkSample | None:
    """The work sample the history keeps of this decision: the first a chosen signal asks for (the
    history keeps one sample per decision, whichever signals read it)."""
    return next((s for s in (signal.remember(observation, now) for signal in chosen) if s is not None), None)


def _run(
    rules: Sequence[Rule], value: int, limited_by: LimitedBy, ctx: Context, lines: list[str]
) -> tuple[int, LimitedBy]:
    for rule in rules:
        step = rule(value, ctx)
        value = step.value
        if step.limited_by is not None:
            limited_by = step.limited_by
        if step.line:
            if step.joins and lines:
                lines[-1] = f"{lines[-1]}; {step.line}"
            else:
                lines.append(step.line)
    return value, limited_by


def combine(proposals: Sequence[Proposal]) -> Proposal:
    """The largest proposal (the first configured on a tie), carrying the pool-wide figures: every
    signal's unavailable inputs block a scale-down, any active signal wakes the pool."""
    winner = max(proposals, key=lambda p: p.raw_need)  # max keeps the first of equals
    if len(proposals) == 1:
        return winner
    active = [p for p in proposals if p.active]
    waker = winner if winner.active or not active else active[0]
    caps = [p.cap for p in proposals if p.cap is not None]
    return Proposal(
        signal=winner.signal,
        raw_need=winner.raw_need,
        lines=winner.lines,
        active=bool(active),
        activity=waker.activity,
        unavailable=tuple(u for p in proposals for u in p.unavailable),
        backlog=sum(p.backlog for p in proposals),
        work=max(p.work for p in proposals),
        held=winner.held,
        cap=min(caps, key=_cap_value, default=None),
    )


def _cap_value(cap: Cap) -> int:
    return cap.value

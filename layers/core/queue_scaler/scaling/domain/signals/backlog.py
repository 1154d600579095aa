"""The backlog signal (CONTRACTS.md section 1): sum over a pool's queues of backlog / target.

The one place the backlog rule lives: the decision, the published metrics and the simulator use it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.models import QUEUE_COUNTS, History, Observation, QueueObservation, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals import Proposal
from queue_scaler.shared.domain.text import fmt


class BacklogSettings(BaseModel):
    """The backlog signal's settings. Empty: it reads the pool's queue fields (`count_in_flight`,
    `count_delayed`, targets, `activation_backlog`), which CONTRACTS.md section 1 keeps on the pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def backlog_count(pool: PoolConfig, visible: int, in_flight: int, delayed: int) -> int:
    """A queue's backlog: visible, plus in flight and delayed when the pool counts them."""
    backlog = visible
    if pool.count_in_flight:
        backlog += in_flight
    if pool.count_delayed:
        backlog += delayed
    return backlog


def queue_backlog(pool: PoolConfig, seen: QueueObservation) -> int:
    """The backlog of one observed queue (see `backlog_count`)."""
    return backlog_count(pool, seen.visible, seen.in_flight, seen.delayed)


def queue_need(pool: PoolConfig, target: float, backlog: int, in_flight: int) -> float:
    """Instances one queue needs: backlog / target, or with `count_in_flight_as_slots` the waiting
    messages over the target plus each running message's slot (never below backlog / target unless
    `count_in_flight_as_slots_always`)."""
    if pool.slots_held(target):
        return (backlog - in_flight) / target + in_flight / pool.slots_per_instance
    return backlog / target


class BacklogSignal:
    """Implements `Signal`: queues that errored or were not observed are unavailable."""

    name = "backlog"
    settings = BacklogSettings
    inputs = frozenset({QUEUE_COUNTS})

    def check(self, pool: PoolConfig, settings: BaseModel) -> None:
        """Every pool can count its backlog."""

    def history_seconds(self, settings: BaseModel) -> float:
        return 0.0

    def remember(self, observation: Observation, now: float) -> WorkSample | None:
        return None

    def need(self, pool: PoolConfig, observation: Observation, history: History, now: float) -> Proposal:
        observed = {q.name: q for q in observation.queues}
        raw_need = 0.0
        held = 0.0
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
            detail = " + ".join(parts)
            ratio = queue_need(pool, target, backlog, seen.in_flight)
            if pool.slots_held(target):
                # A running message holds its slot until it ends, however many messages the target lets
                # one instance carry; the target still sizes the waiting ones.
                waiting = backlog - seen.in_flight
                slots = seen.in_flight / pool.slots_per_instance
                held += slots
                lines.append(
                    f"{queue.name}: backlog {backlog} ({detail}): {waiting} waiting / target {fmt(target)} "
                    f"= {fmt(waiting / target)} + {seen.in_flight} in flight / {pool.slots_per_instance} slot(s) "
                    f"= {fmt(slots)}: {fmt(ratio)}"
                )
            else:
                lines.append(f"{queue.name}: backlog {backlog} ({detail}) / target {fmt(target)} = {fmt(ratio)}")
            raw_need += ratio
        active = backlog_total > pool.activation_backlog
        relation = ">" if active else "<="
        return Proposal(
            signal=self.name,
            raw_need=raw_need,
            lines=tuple(lines),
            active=active,
            activity=f"backlog {backlog_total} {relation} activation {fmt(pool.activation_backlog)}",
            unavailable=tuple(unavailable),
            backlog=backlog_total,
            work=work,
            held=held,
        )


BACKLOG = BacklogSignal()
signals.register(BACKLOG)

"""Each pool's load as people (and EC2 target tracking) read it: backlog per in-service instance.

Pure: the metrics service observes queues and groups, this turns the observation into figures.
Backlog counts as the scaler counts it (visible, plus in flight and delayed when the pool says so).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from queue_scaler.scaling.domain.models import Observation
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.domain.signals.backlog import queue_backlog


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class QueueLoad(_Model):
    queue: str
    backlog: int
    backlog_per_instance: float


class PoolTotals(_Model):
    backlog: int
    backlog_per_instance: float = Field(description="backlog / max(in_service, 1)")
    backlog_while_at_zero: int = Field(description="The backlog when desired is 0, else 0: a wake-up signal")
    backlog_at_max: int = Field(description="The backlog when desired is at the pool's max_size, else 0")


class PoolLoad(_Model):
    pool: str
    desired: int
    in_service: int
    # None when a queue could not be read: a partial sum would understate the load, and target
    # tracking would scale in on it.
    totals: PoolTotals | None
    queues: list[QueueLoad]
    unavailable: list[str] = Field(default_factory=list, description="Queues that could not be read")


def pool_load(pool: PoolConfig, observation: Observation) -> PoolLoad:
    """Backlog per instance for the pool and each readable queue.

    Dividing by max(in_service, 1) keeps the figure defined at zero, where it equals the backlog, so
    target tracking on it still scales a pool out from zero; the separate at-zero figure is what an
    alarm watches to wake the scaler at once.
    """
    fleet = observation.fleet
    divisor = max(fleet.in_service, 1)
    loads: list[QueueLoad] = []
    unavailable: list[str] = []
    observed = {q.name: q for q in observation.queues}
    for queue in pool.queues:
        seen = observed.get(queue.name)
        if seen is None or seen.error is not None:
            # An unreadable queue is left out, never published as 0: a 0 would tell target tracking to scale in.
            unavailable.append(queue.name)
            continue
        backlog = queue_backlog(pool, seen)
        loads.append(
            QueueLoad(
                queue=queue.name,
                backlog=backlog,
                backlog_per_instance=backlog / divisor,
            )
        )
    totals = None
    if not unavailable:
        total = sum(q.backlog for q in loads)
        totals = PoolTotals(
            backlog=total,
            backlog_per_instance=total / divisor,
            backlog_while_at_zero=total if fleet.desired == 0 else 0,
            backlog_at_max=total if fleet.desired >= pool.max_size else 0,
        )
    return PoolLoad(
        pool=pool.name,
        desired=fleet.desired,
        in_service=fleet.in_service,
        totals=totals,
        queues=loads,
        unavailable=unavailable,
    )

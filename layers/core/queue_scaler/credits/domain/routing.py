"""Routing a submitted job: its kind picks the pool, its plan picks that pool's queue.

Pure: the producer passes in the pool configuration the scaler itself reads, so that a job always
lands on a queue some pool scales for.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict

from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.scaling.domain.pool import PoolConfig, QueueConfig


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str
    queue: str
    queue_url: str | None = None


class Unroutable(ValueError):
    """No pool serves the job's kind, or its pool has no queue for the job's plan (the message names it)."""


def pool_for(config: ScalerConfig, kind: str) -> PoolConfig:
    """The first pool whose `kinds` match `kind`; else the pool named by the kind's first dotted part."""
    for pool in config.pools:
        if any(fnmatchcase(kind, pattern) for pattern in pool.kinds):
            return pool
    family = kind.partition(".")[0]
    for pool in config.pools:
        if pool.name == family and not pool.kinds:
            return pool
    served = sorted({p for pool in config.pools for p in pool.kinds} | {f"{pool.name}.*" for pool in config.pools})
    raise Unroutable(f"kind {kind!r}: no pool serves it (kinds served: {', '.join(served)})")


def queue_for(pool: PoolConfig, plan: str) -> QueueConfig:
    """The pool's queue for `plan`: its `plan`, else a name ending in `-<plan>`, else a pool's only queue."""
    explicit = [q for q in pool.queues if q.plan == plan]
    if explicit:
        return explicit[0]
    named = [q for q in pool.queues if q.plan is None and q.name.endswith(f"-{plan}")]
    if named:
        return named[0]
    if len(pool.queues) == 1 and pool.queues[0].plan is None:
        return pool.queues[0]
    raise Unroutable(f"plan {plan!r}: pool {pool.name} has no queue for it (its plans: {', '.join(plans_of(pool))})")


def plans_of(pool: PoolConfig) -> list[str]:
    """The plans `pool` has a queue for, as `queue_for` finds them: each queue's `plan`, else its name's
    last dashed part (a pool's only queue without a `plan` takes every plan, and is not asked)."""
    return [q.plan or q.name.rpartition("-")[2] for q in pool.queues]


def route(config: ScalerConfig, kind: str, plan: str) -> Route:
    """Where a job of `kind` on `plan` is sent; raises Unroutable naming the kind or the plan."""
    pool = pool_for(config, kind)
    queue = queue_for(pool, plan)
    return Route(pool=pool.name, queue=queue.name, queue_url=queue.url)

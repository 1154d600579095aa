"""Observing pools: all groups in one describe, all queues in one parallel fan-out.

The scale tick and the metrics publisher read the same things the same way; a failure is logged
with its context and counted, never turned into a zero. Besides the queue counters every pool is
observed with, the scale tick reads each other input kind its pools' signals need (`Signal.inputs`)
through the reader the composition root maps that kind to: the service knows kinds, not signals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.fleet import GroupState, fleet_observation, leaving_instances
from queue_scaler.scaling.domain.models import QUEUE_COUNTS, Observation, QueueReading, RefreshState
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.ports import Fleet, InputReader, InstanceRefreshes, LeavingInstances, QueueMetrics
from queue_scaler.shared.errors import AwsCallError
from queue_scaler.shared.metric_names import Metric
from queue_scaler.shared.ports import MetricsSink

logger = logging.getLogger(__name__)


def observe_pools(
    pools: Sequence[PoolConfig],
    queues: QueueMetrics,
    fleet: Fleet,
    metrics: MetricsSink,
    *,
    now: float,
    leaving: LeavingInstances | None = None,
    inputs: Mapping[str, InputReader] | None = None,
    refreshes: InstanceRefreshes | None = None,
) -> dict[str, Observation | str]:
    """Each pool's observation at `now`, or the reason it could not be observed. Reads only.

    With `inputs` (input kind -> reader), each pool is also observed with every other input its
    signals need; a pool needing a kind no reader serves cannot be observed. Without it, only the
    queue counters and the fleet are read (the metrics publisher).

    With `leaving`, the lifecycle function's records of instances on their way out count as
    capacity going away (domain.fleet). When they cannot be read, no instance counts as leaving:
    leaving instances only ever add to a recommendation, so the fleet is still scaled on its
    backlog (a burst during a DynamoDB outage still scales out); only their early replacement waits.

    With `refreshes`, a group that still holds instances of another launch template version is asked
    whether an instance refresh runs (one call per such group; none while every instance matches).
    Unreadable, the refresh counts as "unknown": desired is not lowered and no refresh is started.
    """
    fleets: Mapping[str, GroupState]
    try:
        fleets = fleet.describe([p.group_name for p in pools])
    except AwsCallError as error:
        # Without the groups' state no pool can be observed; the next tick tries again.
        metrics.count(Metric.DESCRIBE_GROUPS_ERRORS)
        logger.error("describe groups failed", extra={"error": str(error), "code": error.code})
        return {p.name: f"groups unavailable: {error}" for p in pools}
    going: frozenset[str] = frozenset()
    counted = [i for group in fleets.values() for i in group.replaced_by_scaler()]
    if leaving is not None and counted:
        try:
            going = leaving_instances(leaving.records(counted), now)
        except AwsCallError as error:
            metrics.count(Metric.LEAVING_READ_ERRORS)
            logger.error(
                "leaving instances unreadable: none counted as leaving",
                extra={"error": str(error), "code": error.code},
            )
    refresh: dict[str, RefreshState] = {}
    for name, described in fleets.items():
        if refreshes is None or not described.updating():
            continue
        try:
            refresh[name] = refreshes.refresh_state(name, now)
        except AwsCallError as error:
            refresh[name] = "unknown"
            # Which call failed, and (what the scaler's errors alarm watches) that a pool has a failure.
            metrics.count(Metric.INSTANCE_REFRESH_ERRORS)
            metrics.count(Metric.POOL_ERRORS)
            logger.error(
                "instance refresh state unreadable: desired not lowered",
                extra={"group": name, "error": str(error), "code": error.code},
            )
    # All pools' queues in one parallel fan-out: a tick costs one round trip, not one per pool.
    flat = [q for p in pools for q in p.queues]
    readings = iter(queues.read(flat))
    result: dict[str, Observation | str] = {}
    for pool in pools:
        observed = [next(readings) for _ in pool.queues]
        for reading in observed:
            if reading.error is not None:
                # Stack-wide, the pool in the log line: one metric, whatever the number of pools.
                metrics.count(Metric.QUEUE_READ_ERRORS)
                logger.warning(
                    "queue unreadable", extra={"pool": pool.name, "queue": reading.name, "code": reading.error}
                )
        group = fleets.get(pool.group_name)
        if group is None:
            result[pool.name] = f"Auto Scaling group {pool.group_name!r} not found"
            continue
        fleet_now = fleet_observation(group, going, refresh.get(pool.group_name, "none"))
        result[pool.name] = Observation(queues=observed, fleet=fleet_now)
    if inputs is not None:
        _read_inputs(pools, inputs, metrics, result)
    return result


def _needs(pool: PoolConfig) -> set[str]:
    """The input kinds `pool`'s signals read beyond the queue counters."""
    return {kind for name in pool.signals for kind in signals.get(name).inputs} - {QUEUE_COUNTS}


def _read_inputs(
    pools: Sequence[PoolConfig],
    readers: Mapping[str, InputReader],
    metrics: MetricsSink,
    result: dict[str, Observation | str],
) -> None:
    """Add to each observed pool the other inputs its signals need: one read per kind, every pool's queues."""
    observed = [p for p in pools if isinstance(result[p.name], Observation)]
    needs = {pool.name: _needs(pool) for pool in observed}
    for pool in observed:
        missing = sorted(needs[pool.name] - set(readers))
        if missing:
            # A signal's input that nothing reads is a deployment error: the pool is not scaled on a guess.
            result[pool.name] = f"no reader for input(s) {missing} its signals need"
    for kind in sorted(set().union(*needs.values()) & set(readers)):
        users = [p for p in observed if kind in needs[p.name] and isinstance(result[p.name], Observation)]
        readings = iter(readers[kind].read([q for p in users for q in p.queues]))
        for pool in users:
            read = [next(readings) for _ in pool.queues]
            for reading in read:
                if reading.error is not None:
                    metrics.count(Metric.QUEUE_READ_ERRORS)
                    logger.warning(
                        "queue input unreadable",
                        extra={"pool": pool.name, "queue": reading.name, "input": kind, "code": reading.error},
                    )
            _add_input(result, pool.name, kind, read)


def _add_input(result: dict[str, Observation | str], pool: str, kind: str, read: list[QueueReading]) -> None:
    seen = result[pool]
    assert isinstance(seen, Observation)
    result[pool] = seen.model_copy(update={"inputs": {**seen.inputs, kind: read}})

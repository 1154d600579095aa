"""`queue-scaler`: our policy, run by the same scale service the ScalerFunction runs.

The controller drives `queue_scaler.scaling.services.scaling.ScaleService`, built by the composition root
(`bootstrap.simulated_scale_service`: observe, `decide_pool`, `History.record`, set the desired
capacity), through ports backed by the simulated queues and group: the Lambda's loop, not a copy of
it. It ticks every 10 s, as the scaler does within each invocation, with the recommended policy
(`queue_scaler.scaling.config.RECOMMENDED`, the one the template deploys) on the scenario's pool facts,
under whatever policy fields the scenario's `scaler` sets itself. A pool with a warm pool is described
with it, as DescribeWarmPool returns it (its PoolState; each instance Warmed:<state> once prepared,
Warmed:Pending while being prepared): the scaler counts and explains them through the same
FleetObservation fields it reads from AWS.

A scenario may turn on the signals that state what the operator knows or opts into (FEATURE_SIGNALS:
`schedule`, its known busy times; `forecast`, the seasonal floor and its mode): they are added to the
recommended signals, not put in their place, so that the policy stays the recommended one with the
feature on. The peers read the same settings and get the same feature as their docs offer it (KEDA's
cron scaler, Auto Scaling's scheduled actions and predictive scaling). The scaler's clock is the
simulator's (every tick's `now`), read as Unix time: day k of a run starts at k x 86400 s UTC, which is
when a schedule's cron expression fires and what the forecast's same time of day means. Its history
is the product's (`History.record` through the ScaleService), kept in memory across the whole run, so
the forecast reads days of the thinned work samples the DynamoDB item would hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from devkit.sim.engine import Controller, PoolSim
from devkit.sim.policies.registry import Role, register
from queue_scaler import bootstrap
from queue_scaler.scaling.adapters.memory import NullMetrics
from queue_scaler.scaling.config import recommended
from queue_scaler.scaling.domain.fleet import GroupState, InstanceState, WarmPool
from queue_scaler.scaling.domain.models import QueueObservation
from queue_scaler.scaling.domain.pool import PoolConfig, QueueConfig

#: The scaler's tick (ARCHITECTURE.md, "Four call chains": a tick every ~10 s inside each invocation).
TICK_SECONDS = 10.0
#: The signals a scenario may add to the recommended ones (see the module docstring).
FEATURE_SIGNALS = frozenset({"schedule", "forecast"})


def with_features(pool: PoolConfig, scaler: Mapping[str, Any]) -> PoolConfig:
    """The recommended policy on `pool`'s facts, under the scenario's own `scaler` fields, with the
    scenario's feature signals added to the recommended signals (any other signal it lists replaces
    them, as any policy field a scenario sets does)."""
    given = dict(scaler)
    signals = given.get("signals")
    if signals is not None and set(signals) <= FEATURE_SIGNALS:
        base = recommended(pool).signals
        given["signals"] = {name: s.model_dump() for name, s in base.items()} | dict(signals)
    return recommended(pool, given)


class _SimQueues:
    """SQS GetQueueAttributes over the simulated queues: SQS's approximate counts, never an error."""

    def __init__(self, pool: PoolSim) -> None:
        self.pool = pool
        self.index = {q.name: i for i, q in enumerate(pool.config.queues)}

    def read(self, queues: Sequence[QueueConfig]) -> list[QueueObservation]:
        observed = []
        for q in queues:
            visible, in_flight = self.pool.sqs_counts(self.index[q.name])
            observed.append(QueueObservation(name=q.name, visible=visible, in_flight=in_flight))
        return observed


class _SimFleet:
    """The simulated Auto Scaling group; a desired capacity set here is applied by the engine."""

    def __init__(self, pool: PoolSim) -> None:
        self.pool = pool
        self.requested: int | None = None
        # Each instance's state as the group describes it, made once per (instance, state): a day's
        # run describes the group every tick.
        self._states: dict[tuple[int, str], InstanceState] = {}

    def _state(self, instance: int, lifecycle: str) -> InstanceState:
        state = self._states.get((instance, lifecycle))
        if state is None:
            state = InstanceState(instance_id=str(instance), lifecycle_state=lifecycle)
            self._states[instance, lifecycle] = state
        return state

    def describe(self, groups: Sequence[str]) -> Mapping[str, GroupState]:
        pool = self.pool
        instances = [self._state(i, "InService") for i in pool.in_service] + [
            self._state(i, "Pending") for i in pool.booting
        ]
        fleet = GroupState(desired=pool.desired, instances=instances, warm_pool=self._warm_pool())
        return {group: fleet for group in groups}

    def _warm_pool(self) -> WarmPool | None:
        pool = self.pool
        if pool.warm_pool is None:
            return None
        state = pool.warm_pool.state
        instances = [self._state(i, f"Warmed:{state}") for i in pool.warmed] + [
            self._state(i, "Warmed:Pending") for i in pool.warming
        ]
        return WarmPool(state=state, instances=instances)

    def set_desired(self, group: str, desired: int) -> None:
        self.requested = desired


class QueueScaler(Controller):
    def __init__(self, pool: PoolSim) -> None:
        super().__init__(pool)
        self.loops = [(TICK_SECONDS, pool.first_run(TICK_SECONDS))]
        self.fleet = _SimFleet(pool)
        # A scenario's own `scaler` policy fields win (the built-ins set none but the feature signals:
        # tests/unit/sim/test_sim_scenario.py).
        self.config = with_features(pool.config, pool.spec.scaler)
        self.service = bootstrap.simulated_scale_service(_SimQueues(pool), self.fleet, NullMetrics())

    def on_loop(self, index: int, now: float) -> int | None:
        self.fleet.requested = None
        (outcome,) = self.service.tick([self.config], now)
        if outcome.error is not None:
            raise RuntimeError(f"pool {self.pool.name}: scale tick failed in the simulator: {outcome.error}")
        return self.fleet.requested


register(
    "queue-scaler",
    lambda scenario, workload: QueueScaler,
    Role.OURS,
    "the product's ScaleService with the recommended policy the template deploys",
)

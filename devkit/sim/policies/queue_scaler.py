"""`queue-scaler`: our policy, run by the same scale service the ScalerFunction runs.

The controller drives `queue_scaler.services.scaling.ScaleService` itself (observe, prune history,
`decide_pool`, record the recommendation and the scale event, set the desired capacity), through
in-memory implementations of its ports backed by the simulated queues and group: the Lambda's loop,
not a copy of it. It ticks every 10 s, as the scaler does within each invocation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from devkit.sim.engine import Controller, PoolSim
from queue_scaler.config import QueueConfig
from queue_scaler.domain.models import FleetObservation, History, QueueObservation
from queue_scaler.ports import VersionedHistory
from queue_scaler.services.scaling import ScaleService

#: The scaler's tick (ARCHITECTURE.md, "Data flow": a loop every ≈10 s inside each invocation).
TICK_SECONDS = 10.0


class _SimQueues:
    """SQS GetQueueAttributes over the simulated queues: exact counts, never an error."""

    def __init__(self, pool: PoolSim) -> None:
        self.pool = pool
        self.index = {q.name: i for i, q in enumerate(pool.config.queues)}

    def read(self, queues: Sequence[QueueConfig]) -> list[QueueObservation]:
        pool = self.pool
        return [
            QueueObservation(
                name=q.name,
                visible=len(pool.queues[self.index[q.name]]),
                in_flight=pool.in_flight[self.index[q.name]],
            )
            for q in queues
        ]


class _SimFleet:
    """The simulated Auto Scaling group; a desired capacity set here is applied by the engine."""

    def __init__(self, pool: PoolSim) -> None:
        self.pool = pool
        self.requested: int | None = None

    def describe(self, groups: Sequence[str]) -> Mapping[str, FleetObservation]:
        pool = self.pool
        fleet = FleetObservation(desired=pool.desired, in_service=len(pool.in_service), pending=pool.pending)
        return {group: fleet for group in groups}

    def set_desired(self, group: str, desired: int) -> None:
        self.requested = desired


class _MemoryHistory:
    """The scaler's history table, for one pool, in memory."""

    def __init__(self) -> None:
        self.stored = VersionedHistory(History(), 0)

    def load(self, pool: str) -> VersionedHistory:
        return self.stored

    def save(self, pool: str, history: History, expected_version: int) -> int:
        # One controller per pool: no concurrent writer, so the version always matches.
        self.stored = VersionedHistory(history, expected_version + 1)
        return self.stored.version


class _NoMetrics:
    def pool_metrics(self, pool: str, values: Mapping[str, float]) -> None:
        """The simulator measures its own metrics."""

    def count(self, name: str, value: float = 1, pool: str | None = None) -> None:
        """Nothing fails in the simulator's ports."""


class QueueScaler(Controller):
    def __init__(self, pool: PoolSim) -> None:
        super().__init__(pool)
        self.loops = [(TICK_SECONDS, pool.first_run(TICK_SECONDS))]
        self.fleet = _SimFleet(pool)
        self.history = _MemoryHistory()
        self.service = ScaleService(_SimQueues(pool), self.fleet, self.history, _NoMetrics())

    def on_loop(self, index: int, now: float) -> int | None:
        self.fleet.requested = None
        (outcome,) = self.service.tick([self.pool.config], now)
        if outcome.error is not None:
            raise RuntimeError(f"pool {self.pool.name}: scale tick failed in the simulator: {outcome.error}")
        return self.fleet.requested

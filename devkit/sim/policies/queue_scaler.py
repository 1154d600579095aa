"""`queue-scaler`: our policy, the same pure decision the ScalerFunction runs, on the same loop.

The loop mirrors the scaler service: every 10 s it observes each queue's SQS counters and the group,
calls `decide_pool` with the pool's history, sets the desired capacity when it changed (recording a
ScaleEvent), records the decision's recommendation (every queue was readable: the simulator's
queues never fail), and prunes the history to `behavior.longest_window_seconds()`.
"""

from __future__ import annotations

from devkit.sim.engine import Controller, PoolSim
from queue_scaler.domain.decision import decide_pool
from queue_scaler.domain.models import (
    FleetObservation,
    History,
    Observation,
    QueueObservation,
    Recommendation,
    ScaleEvent,
)

#: The scaler's tick (ARCHITECTURE.md, "Data flow": a loop every ≈10 s inside each invocation).
TICK_SECONDS = 10.0


class QueueScaler(Controller):
    def __init__(self, pool: PoolSim) -> None:
        super().__init__(pool)
        self.loops = [(TICK_SECONDS, pool.first_run(TICK_SECONDS))]
        self.history = History()
        self.keep = pool.config.behavior.longest_window_seconds()

    def on_loop(self, index: int, now: float) -> int | None:
        pool = self.pool
        queues = [
            QueueObservation(name=q.name, visible=len(waiting), in_flight=flying)
            for q, waiting, flying in zip(pool.config.queues, pool.queues, pool.in_flight, strict=True)
        ]
        fleet = FleetObservation(desired=pool.desired, in_service=len(pool.in_service), pending=pool.pending)
        decision = decide_pool(now, pool.config, Observation(queues=queues, fleet=fleet), self.history)
        events = list(self.history.scale_events)
        if decision.change:
            events.append(ScaleEvent(at=now, change=decision.change))
        recommendations = [*self.history.recommendations, Recommendation(at=now, desired=decision.recommendation)]
        self.history = History(recommendations=recommendations, scale_events=events).pruned(now, self.keep)
        return decision.desired

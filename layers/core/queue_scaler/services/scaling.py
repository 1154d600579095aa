"""One scale tick over every configured pool: observe, decide (pure), record, actuate.

A failing pool never stops the others: its error is logged with context, counted, and reported in
its outcome, and the remaining pools are still scaled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from queue_scaler.config import PoolConfig
from queue_scaler.domain.decision import decide_pool
from queue_scaler.domain.models import (
    Decision,
    History,
    Observation,
    Recommendation,
    ScaleEvent,
)
from queue_scaler.errors import AwsCallError, ConcurrentUpdate
from queue_scaler.ports import Fleet, HistoryStore, MetricsSink, QueueMetrics
from queue_scaler.services.observation import observe_pools

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolOutcome:
    """What one tick did for one pool."""

    pool: str
    decision: Decision | None = None
    applied: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"pool": self.pool, "applied": self.applied}
        if self.decision is not None:
            out["decision"] = self.decision.model_dump(mode="json")
        if self.error is not None:
            out["error"] = self.error
        return out


def carry_applied(earlier: Sequence[PoolOutcome], latest: Sequence[PoolOutcome]) -> list[PoolOutcome]:
    """The latest tick's outcomes, each `applied` when any tick of the invocation changed its pool:
    an invocation's result reports what it did, not only what its last tick found left to do."""
    changed = {outcome.pool for outcome in earlier if outcome.applied}
    return [replace(o, applied=True) if o.pool in changed and not o.applied else o for o in latest]


class PoolFailed(Exception):
    """A pool could not be decided or actuated this tick; the message says why."""


class ScaleService:
    """Runs scale ticks: the code behind the Lambda, `queue-scaler explain`, the demo and the local cloud."""

    def __init__(self, queues: QueueMetrics, fleet: Fleet, history: HistoryStore, metrics: MetricsSink) -> None:
        self._queues = queues
        self._fleet = fleet
        self._history = history
        self._metrics = metrics

    def observe(self, pools: Sequence[PoolConfig]) -> dict[str, Observation | str]:
        """Each pool's observation, or the reason it could not be observed. Reads only."""
        return observe_pools(pools, self._queues, self._fleet, self._metrics)

    def explain(self, pools: Sequence[PoolConfig], now: float, use_history: bool = True) -> list[PoolOutcome]:
        """What a tick would decide now, writing nothing (for `queue-scaler explain`)."""
        observations = self.observe(pools)
        outcomes = []
        for pool in pools:
            observed = observations[pool.name]
            if isinstance(observed, str):
                outcomes.append(PoolOutcome(pool.name, error=observed))
                continue
            history = self._history.load(pool.name).history if use_history else History()
            outcomes.append(PoolOutcome(pool.name, decide_pool(now, pool, observed, history)))
        return outcomes

    def tick(self, pools: Sequence[PoolConfig], now: float) -> list[PoolOutcome]:
        """Decide and actuate every pool once."""
        observations = self.observe(pools)
        outcomes = []
        for pool in pools:
            observed = observations[pool.name]
            try:
                if isinstance(observed, str):
                    raise PoolFailed(observed)
                outcomes.append(self._scale(pool, observed, now))
            except ConcurrentUpdate as error:
                # Another tick acted on this pool first; its decision stands.
                self._metrics.count("ConcurrentTicks", pool=pool.name)
                logger.warning("tick stood down", extra={"pool": pool.name, "reason": str(error)})
                outcomes.append(PoolOutcome(pool.name, error=str(error)))
            except (AwsCallError, PoolFailed) as error:
                self._metrics.count("PoolErrors", pool=pool.name)
                logger.error("pool not scaled", extra={"pool": pool.name, "error": str(error)})
                outcomes.append(PoolOutcome(pool.name, error=str(error)))
            except Exception as error:
                # A bug must not keep the other pools from being scaled; it is logged with its traceback.
                self._metrics.count("PoolErrors", pool=pool.name)
                logger.exception("pool not scaled: unexpected error", extra={"pool": pool.name})
                outcomes.append(PoolOutcome(pool.name, error=f"{type(error).__name__}: {error}"))
        return outcomes

    def _scale(self, pool: PoolConfig, observation: Observation, now: float) -> PoolOutcome:
        stored = self._history.load(pool.name)
        keep = pool.behavior.longest_window_seconds()
        history = stored.history.pruned(now, keep)
        decision = decide_pool(now, pool, observation, history)

        recommendations = list(history.recommendations)
        # A recommendation from partial metrics understates the need; it must not steer later ticks.
        if not decision.unavailable_queues:
            recommendations.append(Recommendation(at=now, desired=decision.recommendation))
        events = list(history.scale_events)
        if decision.change:
            events.append(ScaleEvent(at=now, change=decision.change))
        updated = History(recommendations=recommendations, scale_events=events)

        # Claim the change before making it: if another tick saved first, this raises and nothing moves.
        version = self._history.save(pool.name, updated, stored.version)
        if decision.change:
            try:
                self._fleet.set_desired(pool.group_name, decision.desired)
            except AwsCallError:
                self._undo_event(pool.name, updated, version, now)
                raise
        self._report(decision, observation, applied=bool(decision.change))
        return PoolOutcome(pool.name, decision, applied=bool(decision.change))

    def _undo_event(self, pool: str, history: History, version: int, now: float) -> None:
        """Drop the scale event of a change that did not happen, so rate limits do not count it."""
        events = [e for e in history.scale_events if e.at != now]
        try:
            self._history.save(pool, History(recommendations=history.recommendations, scale_events=events), version)
        except (AwsCallError, ConcurrentUpdate) as error:
            # The stale event only makes the next period's rate limit stricter; worth a log, not a failure.
            logger.warning("could not undo scale event", extra={"pool": pool, "error": str(error)})

    def _report(self, decision: Decision, observation: Observation, applied: bool) -> None:
        logger.info(
            "decision",
            extra={
                "pool": decision.pool,
                "current": decision.current,
                "desired": decision.desired,
                "recommendation": decision.recommendation,
                "limited_by": str(decision.limited_by),
                "applied": applied,
                "explanation": decision.explanation,
            },
        )
        self._metrics.pool_metrics(
            decision.pool,
            {
                "DesiredCapacity": decision.desired,
                "Need": decision.raw_need,
                "Backlog": decision.backlog,
                "InService": observation.fleet.in_service,
                "ScaleActions": 1 if applied else 0,
            },
        )


def run_ticks(
    *,
    tick: Callable[[float], object],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    remaining_seconds: Callable[[], float],
    tick_seconds: float,
    run_seconds: float,
    margin_seconds: float,
) -> int:
    """Repeat `tick` every `tick_seconds` for up to `run_seconds`, keeping `margin_seconds` of the deadline.

    One invocation per minute then reacts within about a tick, not the schedule's 60 s. Returns the
    number of ticks run (at least one).
    """
    started = clock()
    count = 0
    while True:
        tick_started = clock()
        tick(tick_started)
        count += 1
        next_at = tick_started + tick_seconds
        wait = max(0.0, next_at - clock())
        if next_at - started > run_seconds or remaining_seconds() - wait < margin_seconds:
            return count
        sleep(wait)

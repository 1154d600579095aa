"""One scale tick over every configured pool: observe, decide (pure), record, actuate.

A failing pool never stops the others: its error is logged with context (the pool named there),
counted in a stack-wide metric (one metric however many pools: docs/cost.md), and reported in its
outcome, and the remaining pools are still scaled. A decision is a log line (the dashboard's
table); an applied change is also a metric, and so are the figures of the signals that report them
(a forecast, a schedule's floor), for the pools that configure those.

The history is held in memory between the ticks of one invocation and written only when it must be:
before a change of desired capacity (the write claims the change: a rival writer makes it fail and
nothing moves), and once at the end of the invocation (`flush`) for the recommendations the
stabilization windows must remember. A tick that changes nothing writes nothing and reads no table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from queue_scaler.scaling.domain.decision import decide_pool
from queue_scaler.scaling.domain.fleet import refresh_needed
from queue_scaler.scaling.domain.models import Decision, History, Observation
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.ports import (
    Fleet,
    HistoryStore,
    InputReader,
    InstanceRefreshes,
    LeavingInstances,
    QueueMetrics,
    VersionedHistory,
)
from queue_scaler.scaling.services.observation import observe_pools
from queue_scaler.shared.errors import AwsCallError, ConcurrentUpdate
from queue_scaler.shared.metric_names import Metric
from queue_scaler.shared.ports import MetricsSink

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

    def __init__(
        self,
        queues: QueueMetrics,
        fleet: Fleet,
        history: HistoryStore,
        metrics: MetricsSink,
        leaving: LeavingInstances | None = None,
        *,
        inputs: Mapping[str, InputReader] | None = None,
        refreshes: InstanceRefreshes | None = None,
    ) -> None:
        self._queues = queues
        # The readers of the input kinds signals need beyond the queue counters, by kind.
        self._inputs: Mapping[str, InputReader] = inputs or {}
        self._fleet = fleet
        self._history = history
        self._metrics = metrics
        self._leaving = leaving
        self._refreshes = refreshes
        # Each pool's history since it was loaded, and the pools whose history is newer than the table's.
        self._held: dict[str, VersionedHistory] = {}
        self._unsaved: set[str] = set()

    def observe(self, pools: Sequence[PoolConfig], now: float) -> dict[str, Observation | str]:
        """Each pool's observation at `now`, or the reason it could not be observed. Reads only."""
        return observe_pools(
            pools,
            self._queues,
            self._fleet,
            self._metrics,
            now=now,
            leaving=self._leaving,
            inputs=self._inputs,
            refreshes=self._refreshes,
        )

    def explain(self, pools: Sequence[PoolConfig], now: float, use_history: bool = True) -> list[PoolOutcome]:
        """What a tick would decide now, writing nothing (for `queue-scaler explain`)."""
        observations = self.observe(pools, now)
        outcomes = []
        for pool in pools:
            observed = observations[pool.name]
            if isinstance(observed, str):
                outcomes.append(PoolOutcome(pool.name, error=observed))
                continue
            history = self._current(pool.name).history if use_history else History()
            outcomes.append(PoolOutcome(pool.name, decide_pool(now, pool, observed, history)))
        return outcomes

    def tick(self, pools: Sequence[PoolConfig], now: float) -> list[PoolOutcome]:
        """Decide and actuate every pool once."""
        observations = self.observe(pools, now)
        outcomes = []
        for pool in pools:
            observed = observations[pool.name]
            try:
                if isinstance(observed, str):
                    raise PoolFailed(observed)
                outcomes.append(self._scale(pool, observed, now))
                self._roll_out(pool, observed)
            except ConcurrentUpdate as error:
                # Another tick acted on this pool first; its decision stands, and its history is reloaded.
                self._forget(pool.name)
                self._metrics.count(Metric.CONCURRENT_TICKS)
                logger.warning("tick stood down", extra={"pool": pool.name, "reason": str(error)})
                outcomes.append(PoolOutcome(pool.name, error=str(error)))
            except (AwsCallError, PoolFailed) as error:
                self._metrics.count(Metric.POOL_ERRORS)
                logger.error("pool not scaled", extra={"pool": pool.name, "error": str(error)})
                outcomes.append(PoolOutcome(pool.name, error=str(error)))
            except Exception as error:
                # A bug must not keep the other pools from being scaled; it is logged with its traceback.
                self._forget(pool.name)
                self._metrics.count(Metric.POOL_ERRORS)
                logger.exception("pool not scaled: unexpected error", extra={"pool": pool.name})
                outcomes.append(PoolOutcome(pool.name, error=f"{type(error).__name__}: {error}"))
        return outcomes

    def flush(self) -> None:
        """Write every pool's history that is newer than the table's, then forget what is held: the next
        invocation starts from the table. A pool whose write fails keeps the table's older history; its
        stabilization then remembers less, never more."""
        # Taken and forgotten first: the next invocation starts from the table whatever a write does.
        held_now = dict(self._held)
        unsaved = sorted(pool for pool in self._unsaved if pool in held_now)
        self._held.clear()
        self._unsaved.clear()
        for pool in unsaved:
            held = held_now[pool]
            try:
                self._history.save(pool, held.history, held.version)
            except ConcurrentUpdate as error:
                self._metrics.count(Metric.CONCURRENT_TICKS)
                logger.warning("history not saved: another tick wrote it", extra={"pool": pool, "reason": str(error)})
            except AwsCallError as error:
                self._metrics.count(Metric.HISTORY_WRITE_ERRORS)
                logger.error("history not saved", extra={"pool": pool, "error": str(error)})

    def _current(self, pool: str) -> VersionedHistory:
        held = self._held.get(pool)
        if held is None:
            held = self._held[pool] = self._history.load(pool)
            if held.skipped:
                # Unreadable entries are left out; the end of the invocation writes the history without them.
                self._metrics.count(Metric.HISTORY_ITEMS_SKIPPED, held.skipped, pool=pool)
                logger.warning("history entries skipped", extra={"pool": pool, "skipped": held.skipped})
                self._unsaved.add(pool)
        return held

    def _forget(self, pool: str) -> None:
        self._held.pop(pool, None)
        self._unsaved.discard(pool)

    def _scale(self, pool: PoolConfig, observation: Observation, now: float) -> PoolOutcome:
        held = self._current(pool.name)
        decision = decide_pool(now, pool, observation, held.history)
        if decision.ignored_history:
            # A clock ahead of this one wrote them; they are dropped when the history is next written.
            self._metrics.count(Metric.FUTURE_HISTORY_ENTRIES, decision.ignored_history)
        updated = held.history.record(decision, now, pool.history_seconds(), pool.dense_seconds())
        if not decision.change:
            if updated != held.history:
                self._held[pool.name] = VersionedHistory(updated, held.version)
                self._unsaved.add(pool.name)
            self._report(decision, applied=False)
            return PoolOutcome(pool.name, decision)
        # Claim the change before making it: if another tick saved first, this raises and nothing moves.
        version = self._history.save(pool.name, updated, held.version)
        self._held[pool.name] = VersionedHistory(updated, version)
        self._unsaved.discard(pool.name)
        try:
            self._fleet.set_desired(pool.group_name, decision.desired)
        except AwsCallError:
            self._undo_event(pool.name, updated, version, now)
            raise
        self._report(decision, applied=True)
        return PoolOutcome(pool.name, decision, applied=True)

    def _roll_out(self, pool: PoolConfig, observation: Observation) -> None:
        """Start the instance refresh that rolls a new launch template version (image, AMI) out, once
        per change: AWS refuses a second while one runs, which means another tick started it. A failure
        is counted and logged (the pool's outcome stands: it was scaled all the same), and the next
        tick tries again."""
        if self._refreshes is None or not refresh_needed(observation.fleet):
            return
        context = {"pool": pool.name, "group": pool.group_name, "outdated": observation.fleet.outdated}
        try:
            started = self._refreshes.start_refresh(pool.group_name)
        except AwsCallError as error:
            # Which call failed, and (what the scaler's errors alarm watches) that the pool has a failure.
            self._metrics.count(Metric.INSTANCE_REFRESH_ERRORS)
            self._metrics.count(Metric.POOL_ERRORS)
            logger.error("instance refresh not started", extra={**context, "error": str(error), "code": error.code})
            return
        if started:
            self._metrics.count(Metric.INSTANCE_REFRESHES_STARTED)
            logger.info("instance refresh started", extra=context)
        else:
            logger.info("instance refresh already running", extra=context)

    def _undo_event(self, pool: str, history: History, version: int, now: float) -> None:
        """Drop the scale event of a change that did not happen, so rate limits do not count it."""
        undone = history.without_event(now)
        try:
            self._held[pool] = VersionedHistory(undone, self._history.save(pool, undone, version))
        except (AwsCallError, ConcurrentUpdate) as error:
            # The stale event only makes the next period's rate limit stricter; worth a log, not a failure.
            self._forget(pool)
            logger.warning("could not undo scale event", extra={"pool": pool, "error": str(error)})

    def _report(self, decision: Decision, applied: bool) -> None:
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
        # The signals' figures every tick (only pools whose signals report any have some), the scale
        # action when one was applied: one EMF document per pool.
        values = dict(decision.figures)
        if applied:
            values[Metric.SCALE_ACTIONS] = 1
        if values:
            self._metrics.pool_metrics(decision.pool, values)


def idle(outcomes: Sequence[PoolOutcome]) -> bool:
    """True when every pool was decided, left unchanged, and has nothing queued or running: the loop
    has nothing to react to until a job arrives, which the next scheduled invocation sees."""
    return all(
        o.error is None
        and o.decision is not None
        and not o.applied
        and o.decision.change == 0
        and o.decision.backlog == 0
        and o.decision.held == 0
        and not o.decision.unavailable_queues
        for o in outcomes
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
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Repeat `tick` every `tick_seconds` for up to `run_seconds`, keeping `margin_seconds` of the deadline,
    and end early once `stop()` holds after a tick.

    One invocation per minute then reacts within about a tick, not the schedule's 60 s, while there is
    work; an idle invocation (`stop`) ends after its first tick, since Lambda bills the wait between
    ticks (docs/cost.md). Returns the number of ticks run (at least one).
    """
    started = clock()
    count = 0
    while True:
        tick_started = clock()
        tick(tick_started)
        count += 1
        if stop():
            return count
        next_at = tick_started + tick_seconds
        wait = max(0.0, next_at - clock())
        if next_at - started > run_seconds or remaining_seconds() - wait < margin_seconds:
            return count
        sleep(wait)

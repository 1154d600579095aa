"""Backlog per instance per pool for EC2 target tracking, the two per-pool figures the pool alarms watch,
and the dead letters still waiting, published every minute.

Reads only: queues and dead-letter queues (SQS attributes) and groups (Auto Scaling). A figure that
cannot be read is left out, never published as 0. Only what an alarm or target tracking reads is
published: BacklogPerInstance for the pools target tracking sizes, the alarm figures only when they
are not 0, since CloudWatch bills a custom metric for each hour it receives data (docs/cost.md).
Per-queue depth and age, desired and in-service capacity are AWS's own free metrics (AWS/SQS,
AWS/AutoScaling), which the dashboard reads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence, Set
from dataclasses import dataclass

from queue_scaler.scaling.domain.load import PoolLoad, pool_load
from queue_scaler.scaling.domain.pool import PoolConfig, QueueConfig
from queue_scaler.scaling.ports import Fleet, QueueMetrics
from queue_scaler.scaling.services.observation import observe_pools
from queue_scaler.shared.metric_names import Metric
from queue_scaler.shared.ports import MetricsSink

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadOutcome:
    """One pool's published figures, or why there were none."""

    pool: str
    load: PoolLoad | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"pool": self.pool}
        if self.load is not None:
            out["load"] = self.load.model_dump(mode="json")
        if self.error is not None:
            out["error"] = self.error
        return out


class QueueMetricsService:
    """Publishes each pool's load: the code behind MetricsFunction."""

    def __init__(
        self,
        queues: QueueMetrics,
        fleet: Fleet,
        metrics: MetricsSink,
        tracked: Set[str] = frozenset(),
        dead_letter_suffix: str = "",
    ) -> None:
        self._queues = queues
        self._fleet = fleet
        self._metrics = metrics
        self._tracked = tracked
        self._dead_letter_suffix = dead_letter_suffix

    def publish(self, pools: Sequence[PoolConfig], now: float) -> list[LoadOutcome]:
        """Observe every pool once at `now` (epoch seconds) and publish its figures; a failing pool
        never stops the others."""
        observations = observe_pools(pools, self._queues, self._fleet, self._metrics, now=now)
        outcomes = []
        for pool in pools:
            observed = observations[pool.name]
            if isinstance(observed, str):
                self._metrics.count(Metric.POOL_ERRORS)
                logger.error("pool not measured", extra={"pool": pool.name, "error": observed})
                outcomes.append(LoadOutcome(pool.name, error=observed))
                continue
            load = pool_load(pool, observed)
            self._report(load)
            outcomes.append(LoadOutcome(pool.name, load))
        self._dead_letters(pools)
        return outcomes

    def _report(self, load: PoolLoad) -> None:
        if load.totals is not None:
            figures: dict[Metric, float] = {}
            if load.pool in self._tracked:
                figures[Metric.BACKLOG_PER_INSTANCE] = load.totals.backlog_per_instance
            if load.totals.backlog_while_at_zero:
                figures[Metric.BACKLOG_WHILE_AT_ZERO] = load.totals.backlog_while_at_zero
            if load.totals.backlog_at_max:
                figures[Metric.BACKLOG_AT_MAX] = load.totals.backlog_at_max
            if figures:
                self._metrics.pool_metrics(load.pool, figures)
        logger.info("pool load", extra=load.model_dump(mode="json"))

    def _dead_letters(self, pools: Sequence[PoolConfig]) -> None:
        """Publish the messages all dead-letter queues still hold, when there are any: DlqRefundFunction
        settles each within seconds, so letters that stay mean it is not settling them (one stack-wide
        metric and alarm, whatever the number of queues)."""
        suffix = self._dead_letter_suffix
        if not suffix:
            return
        queues = [
            QueueConfig(name=f"{q.name}{suffix}", url=f"{q.url}{suffix}" if q.url else None, target_per_instance=1)
            for p in pools
            for q in p.queues
        ]
        waiting = 0
        for reading in self._queues.read(queues):
            if reading.error is not None:
                self._metrics.count(Metric.QUEUE_READ_ERRORS)
                logger.warning("dead-letter queue unreadable", extra={"queue": reading.name, "code": reading.error})
                continue
            waiting += reading.visible + reading.in_flight + reading.delayed
        if waiting:
            self._metrics.count(Metric.DEAD_LETTERS_WAITING, waiting)
            logger.info("dead letters waiting", extra={"waiting": waiting})

"""Backlog per instance, per pool and queue, published every minute for people and EC2 target tracking.

Reads only: queues (SQS attributes), groups (Auto Scaling) and the oldest message's age (CloudWatch).
A figure that cannot be read is left out, never published as 0; the oldest-message age is optional
(CloudWatch has it only for queues with recent datapoints), so its failure costs only that figure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from queue_scaler.config import PoolConfig
from queue_scaler.domain.load import PoolLoad, pool_load
from queue_scaler.errors import AwsCallError
from queue_scaler.ports import Fleet, LoadMetricsSink, MessageAges, QueueMetrics
from queue_scaler.services.observation import observe_pools

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

    def __init__(self, queues: QueueMetrics, fleet: Fleet, ages: MessageAges, metrics: LoadMetricsSink) -> None:
        self._queues = queues
        self._fleet = fleet
        self._ages = ages
        self._metrics = metrics

    def publish(self, pools: Sequence[PoolConfig], now: float) -> list[LoadOutcome]:
        """Observe every pool once at `now` (epoch seconds) and publish its figures; a failing pool
        never stops the others."""
        observations = observe_pools(pools, self._queues, self._fleet, self._metrics, now=now)
        oldest = self._oldest([q.name for p in pools for q in p.queues], now)
        outcomes = []
        for pool in pools:
            observed = observations[pool.name]
            if isinstance(observed, str):
                self._metrics.count("PoolErrors", pool=pool.name)
                logger.error("pool not measured", extra={"pool": pool.name, "error": observed})
                outcomes.append(LoadOutcome(pool.name, error=observed))
                continue
            load = pool_load(pool, observed, oldest)
            self._report(load)
            outcomes.append(LoadOutcome(pool.name, load))
        return outcomes

    def _oldest(self, queues: list[str], now: float) -> Mapping[str, float]:
        try:
            return self._ages.oldest(queues, now)
        except AwsCallError as error:
            self._metrics.count("AgeReadErrors")
            logger.warning("oldest message ages unavailable", extra={"error": str(error), "code": error.code})
            return {}

    def _report(self, load: PoolLoad) -> None:
        figures: dict[str, float] = {"DesiredCapacity": load.desired, "InService": load.in_service}
        if load.totals is not None:
            figures |= {
                "Backlog": load.totals.backlog,
                "BacklogPerInstance": load.totals.backlog_per_instance,
                "BacklogWhileAtZero": load.totals.backlog_while_at_zero,
            }
        self._metrics.pool_metrics(load.pool, figures)
        for queue in load.queues:
            self._metrics.queue_metrics(
                load.pool, queue.queue, {"Backlog": queue.backlog, "BacklogPerInstance": queue.backlog_per_instance}
            )
            if queue.oldest_message_seconds is not None:
                self._metrics.queue_metrics(
                    load.pool, queue.queue, {"AgeOfOldestMessage": queue.oldest_message_seconds}, unit="Seconds"
                )
        logger.info("pool load", extra=load.model_dump(mode="json"))

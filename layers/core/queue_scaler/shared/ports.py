"""The port every area's services use: the metrics sink.

Adapters implement them over boto3; tests and the simulator implement them in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from queue_scaler.shared.metric_names import Metric


class MetricsSink(Protocol):
    # Names are `Metric` members, never strings: queue_scaler.shared.metric_names is the one list of what is
    # published, which the alarms' and the cost's contract tests read.
    def pool_metrics(self, pool: str, values: Mapping[Metric, float]) -> None:
        """Record one pool's figures (Count units) for this tick."""
        ...

    def count(self, name: Metric, value: float = 1, pool: str | None = None) -> None:
        """Count an event, such as a failure, optionally for one pool."""
        ...

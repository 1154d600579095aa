"""CloudWatch metrics as EMF through Powertools: per-pool figures carry Pool and Environment dimensions,
stack-wide ones Environment only (Powertools adds `service` to each). queue_scaler.shared.metric_names lists
every name and which dimensions it takes: each Pool value is a metric CloudWatch bills."""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from queue_scaler.shared.metric_names import SPECS, Metric


class EmfMetrics:
    """Implements ports.MetricsSink: one EMF document per pool and tick, so dimensions stay per pool."""

    def __init__(self, namespace: str, service: str, environment: str) -> None:
        self._namespace = namespace
        self._service = service
        self._environment = environment

    def _emit(self, values: Mapping[Metric, float], pool: str | None, unit: str | None = None) -> None:
        metrics = EphemeralMetrics(namespace=self._namespace, service=self._service)
        metrics.add_dimension(name="Environment", value=self._environment)
        if pool is not None:
            metrics.add_dimension(name="Pool", value=pool)
        for name, value in values.items():
            metrics.add_metric(name=name, unit=MetricUnit(unit or SPECS[name].unit), value=value)
        metrics.flush_metrics()

    def pool_metrics(self, pool: str, values: Mapping[Metric, float]) -> None:
        self._emit(values, pool)

    def count(self, name: Metric, value: float = 1, pool: str | None = None) -> None:
        self._emit({name: value}, pool)

    def seconds(self, name: Metric, value: float, pool: str | None = None) -> None:
        """A duration, such as a drain's (ports.LifecycleMetricsSink)."""
        self._emit({name: value}, pool, unit="Seconds")

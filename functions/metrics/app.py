"""MetricsFunction: every minute, publish each pool's and queue's backlog per instance as EMF metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from queue_scaler.adapters.parameters import SsmConfigSource
from queue_scaler.events import ScheduledEvent
from queue_scaler.observability import EmfMetrics
from queue_scaler.services.queue_metrics import QueueMetricsService
from queue_scaler.services.wiring import queue_metrics_service
from queue_scaler.settings import MetricsSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()  # its namespace and service name the EMF documents the service emits
copy_config_to_registered_loggers(source_logger=logger, include={"queue_scaler"})


@cache
def _wiring() -> tuple[SsmConfigSource, QueueMetricsService]:
    settings = MetricsSettings()
    emf = EmfMetrics(metrics.namespace or "QueueScaler", metrics.service or "metrics", settings.environment)
    source = SsmConfigSource(settings.pool_config_parameter, settings.config_max_age_seconds)
    return source, queue_metrics_service(emf, settings.age_lookback_seconds)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parse(event=event, model=ScheduledEvent)
    source, service = _wiring()
    outcomes = service.publish(source.load().pools, datetime.now(UTC))
    return {"pools": [outcome.as_dict() for outcome in outcomes]}

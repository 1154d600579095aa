"""MetricsFunction: every minute, publish each pool's and queue's backlog per instance as EMF metrics."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from queue_scaler import bootstrap
from queue_scaler.scaling.adapters.parameters import SsmConfigSource
from queue_scaler.scaling.services.queue_metrics import QueueMetricsService
from queue_scaler.settings import MetricsSettings
from queue_scaler.shared.events import ScheduledEvent
from queue_scaler.shared.observability import EmfMetrics

logger = Logger()
tracer = Tracer()
metrics = Metrics()  # its namespace and service name the EMF documents the service emits
copy_config_to_registered_loggers(source_logger=logger, include={"queue_scaler"})


@cache
def _wiring() -> tuple[SsmConfigSource, QueueMetricsService]:
    settings = MetricsSettings()
    emf = EmfMetrics(metrics.namespace or "QueueScaler", metrics.service or "metrics", settings.environment)
    source = bootstrap.config_source(settings.measured_pools_parameter, settings.config_max_age_seconds)
    return source, bootstrap.queue_metrics_service(settings, emf)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parse(event=event, model=ScheduledEvent)
    source, service = _wiring()
    outcomes = service.publish(source.load().pools, time.time())
    return {"pools": [outcome.as_dict() for outcome in outcomes]}

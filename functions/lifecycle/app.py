"""LifecycleFunction: lifecycle hooks, Spot warnings, SSM command status changes and the reconciler's schedule.

The events arrive as SQS batches from LifecycleEventsQueue (partial batch responses: a record whose
handling raised comes back, and after ten tries waits in the dead-letter queue); the reconciler's
schedule invokes the function directly.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from queue_scaler.bootstrap import lifecycle_service
from queue_scaler.lifecycle.services.lifecycle import LifecycleService
from queue_scaler.settings import LifecycleSettings
from queue_scaler.shared.events import LifecycleTrigger
from queue_scaler.shared.observability import EmfMetrics

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
# The services log through stdlib loggers; give them Powertools' JSON format and Lambda context.
copy_config_to_registered_loggers(source_logger=logger, include={"queue_scaler"})


@cache
def _service() -> LifecycleService:
    settings = LifecycleSettings()
    emf = EmfMetrics(metrics.namespace or "QueueScaler", metrics.service or "lifecycle", settings.environment)
    return lifecycle_service(settings, emf)


def _handle(event: dict[str, Any]) -> dict[str, Any]:
    trigger = parse(event=event, model=LifecycleTrigger).root
    reports = _service().handle(trigger, now=time.time())
    kind = event.get("detail-type")
    return {"event": kind, "actions": [report.as_dict() for report in reports]}


def record_handler(record: SQSRecord) -> dict[str, Any]:
    return _handle(record.json_body)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )
    return _handle(event)

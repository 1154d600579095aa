"""DlqRefundFunction: refund every dead-lettered job once, tell its user once, park what cannot be refunded.

An SQS event source on every dead-letter queue, with ReportBatchItemFailures: only the records that
raised a retryable error (an AWS call failed, or another delivery holds the job's notice) come back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from queue_scaler.bootstrap import refund_service
from queue_scaler.credits.services.refunds import RefundService
from queue_scaler.settings import DlqRefundSettings
from queue_scaler.shared.events import DeadLetter
from queue_scaler.shared.observability import EmfMetrics

logger = Logger()
tracer = Tracer()
metrics = Metrics()  # its namespace and service name the EMF documents the service emits
processor = BatchProcessor(event_type=EventType.SQS)
copy_config_to_registered_loggers(source_logger=logger, include={"queue_scaler"})


@cache
def _service() -> RefundService:
    settings = DlqRefundSettings()
    return refund_service(
        ledger_table=settings.ledger_table,
        parking_table=settings.parking_table,
        notice_topic_arn=settings.notice_topic_arn,
        metrics=EmfMetrics(metrics.namespace or "QueueScaler", metrics.service or "dlq-refund", settings.environment),
        policy=settings.policy(),
        dead_letters=settings.dead_letters(),
        lease_seconds=settings.notice_lease_seconds,
    )


def record_handler(record: SQSRecord) -> dict[str, object]:
    letter = DeadLetter.model_validate(record.raw_event)
    return _service().handle(letter, datetime.now(UTC)).as_dict()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

"""Builds the scaler's service from real adapters; shared by the Lambda handler and the CLI."""

from __future__ import annotations

from queue_scaler.adapters import clients
from queue_scaler.adapters.autoscaling import AutoScalingFleet
from queue_scaler.adapters.history import DynamoHistoryStore
from queue_scaler.adapters.sqs import SqsQueueMetrics
from queue_scaler.ports import MetricsSink
from queue_scaler.services.scaling import ScaleService


def scale_service(history_table: str, metrics: MetricsSink, endpoint_url: str | None = None) -> ScaleService:
    """A ScaleService over SQS, Auto Scaling and the DynamoDB history table."""
    return ScaleService(
        queues=SqsQueueMetrics(clients.sqs(endpoint_url)),
        fleet=AutoScalingFleet(clients.autoscaling(endpoint_url)),
        history=DynamoHistoryStore(history_table, clients.dynamodb(endpoint_url)),
        metrics=metrics,
    )

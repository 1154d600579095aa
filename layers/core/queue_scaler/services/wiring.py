"""Builds the services from real adapters; shared by the Lambda handlers, the CLI and the local cloud."""

from __future__ import annotations

from queue_scaler.adapters import clients
from queue_scaler.adapters.actions import DynamoActionStore
from queue_scaler.adapters.autoscaling import AutoScalingFleet
from queue_scaler.adapters.history import DynamoHistoryStore
from queue_scaler.adapters.lifecycle_hooks import AutoScalingLifecycleHooks
from queue_scaler.adapters.sqs import SqsQueueMetrics
from queue_scaler.adapters.ssm_commands import SsmRemoteCommands
from queue_scaler.ports import LifecycleMetricsSink, MetricsSink
from queue_scaler.services.lifecycle import LifecycleService
from queue_scaler.services.scaling import ScaleService
from queue_scaler.settings import LifecycleSettings


def scale_service(history_table: str, metrics: MetricsSink, endpoint_url: str | None = None) -> ScaleService:
    """A ScaleService over SQS, Auto Scaling and the DynamoDB history table."""
    return ScaleService(
        queues=SqsQueueMetrics(clients.sqs(endpoint_url)),
        fleet=AutoScalingFleet(clients.autoscaling(endpoint_url)),
        history=DynamoHistoryStore(history_table, clients.dynamodb(endpoint_url)),
        metrics=metrics,
    )


def lifecycle_service(
    settings: LifecycleSettings, metrics: LifecycleMetricsSink, endpoint_url: str | None = None
) -> LifecycleService:
    """A LifecycleService over Auto Scaling lifecycle actions, SSM Run Command and the DynamoDB actions table."""
    return LifecycleService(
        store=DynamoActionStore(settings.actions_table, settings.retention_seconds, clients.dynamodb(endpoint_url)),
        hooks=AutoScalingLifecycleHooks(clients.autoscaling(endpoint_url)),
        commands=SsmRemoteCommands(clients.ssm(endpoint_url)),
        metrics=metrics,
        policy=settings.policy(),
        groups=settings.group_names,
    )

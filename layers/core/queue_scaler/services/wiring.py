"""Builds the services from real adapters; shared by the Lambda handlers, the CLI and the local cloud."""

from __future__ import annotations

from queue_scaler.adapters import clients
from queue_scaler.adapters.actions import DynamoActionStore
from queue_scaler.adapters.autoscaling import AutoScalingFleet
from queue_scaler.adapters.cloudwatch import CloudWatchMessageAges
from queue_scaler.adapters.history import DynamoHistoryStore
from queue_scaler.adapters.ledger import DynamoLedger
from queue_scaler.adapters.lifecycle_hooks import AutoScalingLifecycleHooks
from queue_scaler.adapters.notifier import SnsNotifier
from queue_scaler.adapters.parking import DynamoParking
from queue_scaler.adapters.sqs import SqsJobQueues, SqsQueueMetrics
from queue_scaler.adapters.ssm_commands import SsmRemoteCommands
from queue_scaler.config import ScalerConfig
from queue_scaler.domain.refund import DeadLetterPolicy, RefundPolicy
from queue_scaler.ports import LifecycleMetricsSink, LoadMetricsSink, MetricsSink
from queue_scaler.producer import Producer
from queue_scaler.services.lifecycle import LifecycleService
from queue_scaler.services.queue_metrics import QueueMetricsService
from queue_scaler.services.refunds import RefundService
from queue_scaler.services.scaling import ScaleService
from queue_scaler.settings import LifecycleSettings

#: The scaler only reads the actions table; the retention applies to what the lifecycle function writes.
LEAVING_READ_ONLY = 0.0


def scale_service(
    history_table: str, metrics: MetricsSink, endpoint_url: str | None = None, actions_table: str | None = None
) -> ScaleService:
    """A ScaleService over SQS, Auto Scaling and the DynamoDB history table; with `actions_table`, the
    lifecycle function's record of leaving instances feeds the fleet's observation."""
    leaving = (
        DynamoActionStore(actions_table, LEAVING_READ_ONLY, clients.dynamodb(endpoint_url)) if actions_table else None
    )
    return ScaleService(
        queues=SqsQueueMetrics(clients.sqs(endpoint_url)),
        fleet=AutoScalingFleet(clients.autoscaling(endpoint_url), leaving),
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


def queue_metrics_service(
    metrics: LoadMetricsSink, age_lookback_seconds: int = 600, endpoint_url: str | None = None
) -> QueueMetricsService:
    """A QueueMetricsService over SQS, Auto Scaling and CloudWatch."""
    return QueueMetricsService(
        queues=SqsQueueMetrics(clients.sqs(endpoint_url)),
        fleet=AutoScalingFleet(clients.autoscaling(endpoint_url)),
        ages=CloudWatchMessageAges(clients.cloudwatch(endpoint_url), age_lookback_seconds),
        metrics=metrics,
    )


def refund_service(
    *,
    ledger_table: str,
    parking_table: str,
    notice_topic_arn: str,
    metrics: MetricsSink,
    policy: RefundPolicy,
    lease_seconds: float,
    dead_letters: DeadLetterPolicy | None = None,
    endpoint_url: str | None = None,
) -> RefundService:
    """A RefundService over the DynamoDB ledger and parking tables, the SNS notice topic and the job
    queues (to send released jobs back).

    The local cloud builds the same service against its emulator with `endpoint_url`.
    """
    return RefundService(
        ledger=DynamoLedger(ledger_table, clients.dynamodb(endpoint_url)),
        parking=DynamoParking(parking_table, clients.dynamodb(endpoint_url)),
        notifier=SnsNotifier(notice_topic_arn, clients.sns(endpoint_url)),
        metrics=metrics,
        queues=SqsJobQueues(clients.sqs(endpoint_url)),
        policy=policy,
        dead_letters=dead_letters or DeadLetterPolicy(),
        lease_seconds=lease_seconds,
    )


def producer(
    *,
    ledger_table: str,
    config: ScalerConfig,
    metrics: MetricsSink,
    policy: RefundPolicy,
    endpoint_url: str | None = None,
) -> Producer:
    """A Producer over the DynamoDB ledger and the SQS job queues the pool configuration names."""
    return Producer(
        DynamoLedger(ledger_table, clients.dynamodb(endpoint_url)),
        SqsJobQueues(clients.sqs(endpoint_url)),
        config,
        metrics,
        policy=policy,
    )

"""The composition root: one builder per service, from its settings and an optional endpoint.

Every entry point builds here: the Lambda handlers, `queue-scaler explain`, the local cloud, the demo
and the simulator. So `explain` observes and decides exactly as the ScalerFunction does (leaving
instances included), and no other module picks adapters for a service.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SSMProvider

from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.adapters.notifier import SnsNotifier
from queue_scaler.credits.adapters.parking import DynamoParking
from queue_scaler.credits.domain.refund import CreditLimits, DeadLetterPolicy, RefundPolicy
from queue_scaler.credits.services.refunds import RefundService
from queue_scaler.lifecycle.adapters.actions import DynamoActionStore, DynamoLeavingRecords
from queue_scaler.lifecycle.adapters.lifecycle_hooks import AutoScalingLifecycleHooks
from queue_scaler.lifecycle.adapters.ssm_commands import SsmRemoteCommands
from queue_scaler.lifecycle.ports import LifecycleMetricsSink
from queue_scaler.lifecycle.services.lifecycle import LifecycleService
from queue_scaler.producer import Producer
from queue_scaler.scaling.adapters.autoscaling import AutoScalingFleet
from queue_scaler.scaling.adapters.history import DynamoHistoryStore
from queue_scaler.scaling.adapters.memory import MemoryHistory
from queue_scaler.scaling.adapters.parameters import SsmConfigSource
from queue_scaler.scaling.adapters.sqs import SqsJobQueues, SqsQueueMetrics
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.scaling.ports import Fleet, HistoryStore, InputReader, QueueMetrics
from queue_scaler.scaling.services.queue_metrics import QueueMetricsService
from queue_scaler.scaling.services.scaling import ScaleService
from queue_scaler.settings import LifecycleSettings, MetricsSettings, ScalerSettings
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.ports import MetricsSink


def config_source(parameter: str, max_age_seconds: int = 60, endpoint_url: str | None = None) -> SsmConfigSource:
    """The pools' configuration from its SSM parameter, cached for `max_age_seconds`."""
    return SsmConfigSource(parameter, max_age_seconds, SSMProvider(boto3_client=clients.ssm(endpoint_url)))


def input_readers() -> dict[str, InputReader]:
    """The reader of each input kind a signal may need beyond the queue counters (which every pool is
    observed with), by kind (`Signal.inputs`). A signal over a new input adds its adapter under
    scaling/adapters/ and its reader here; every built-in signal reads the queue counters only, so none is
    mapped yet, and a pool naming a signal whose input has no reader is reported unobservable."""
    return {}


def _scale_service(
    history: HistoryStore, metrics: MetricsSink, endpoint_url: str | None, actions_table: str | None
) -> ScaleService:
    # The one place a ScaleService's AWS adapters are chosen: the Lambda and `explain` share it.
    fleet = AutoScalingFleet(clients.autoscaling(endpoint_url), warm_pools=True)
    return ScaleService(
        queues=SqsQueueMetrics(clients.sqs(endpoint_url)),
        fleet=fleet,
        history=history,
        metrics=metrics,
        leaving=DynamoLeavingRecords(actions_table, clients.dynamodb(endpoint_url)) if actions_table else None,
        inputs=input_readers(),
        refreshes=fleet,
    )


def scale_service(settings: ScalerSettings, metrics: MetricsSink, endpoint_url: str | None = None) -> ScaleService:
    """The ScalerFunction's service: SQS, Auto Scaling, the DynamoDB history table and, with
    ACTIONS_TABLE, the lifecycle function's records of leaving instances."""
    history = DynamoHistoryStore(settings.history_table, clients.dynamodb(endpoint_url))
    return _scale_service(history, metrics, endpoint_url, settings.actions_table)


def explain_service(
    metrics: MetricsSink,
    history_table: str | None = None,
    actions_table: str | None = None,
    endpoint_url: str | None = None,
) -> ScaleService:
    """`queue-scaler explain`'s service: the ScalerFunction's, reading the history table when named
    (else deciding as from a fresh start). `explain` only calls its read-only `explain`."""
    history: HistoryStore = (
        DynamoHistoryStore(history_table, clients.dynamodb(endpoint_url)) if history_table else MemoryHistory()
    )
    return _scale_service(history, metrics, endpoint_url, actions_table)


def simulated_scale_service(queues: QueueMetrics, fleet: Fleet, metrics: MetricsSink) -> ScaleService:
    """The same service over a simulated fleet and queues, its history in memory (the simulator)."""
    return ScaleService(queues=queues, fleet=fleet, history=MemoryHistory(), metrics=metrics)


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
    settings: MetricsSettings, metrics: MetricsSink, endpoint_url: str | None = None
) -> QueueMetricsService:
    """A QueueMetricsService over SQS and Auto Scaling."""
    return QueueMetricsService(
        queues=SqsQueueMetrics(clients.sqs(endpoint_url)),
        fleet=AutoScalingFleet(clients.autoscaling(endpoint_url)),
        metrics=metrics,
        tracked=settings.target_tracking_pools,
        dead_letter_suffix=settings.dead_letter_suffix,
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
    limits: CreditLimits | None = None,
    endpoint_url: str | None = None,
) -> Producer:
    """A Producer over the DynamoDB ledger and the SQS job queues the pool configuration names."""
    limits = limits or CreditLimits()
    return Producer(
        DynamoLedger(ledger_table, clients.dynamodb(endpoint_url), balance_cap=limits.balance_cap),
        SqsJobQueues(clients.sqs(endpoint_url)),
        config,
        metrics,
        policy=policy,
        limits=limits,
    )

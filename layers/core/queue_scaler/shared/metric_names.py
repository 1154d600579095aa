"""Every custom metric the stack's functions publish (namespace `QueueScaler`): its name, its dimensions and
when it is published. One list: the code emits these names, the template's alarms watch them
(tests/contract checks both), and docs/cost.md counts from it what CloudWatch bills at idle.

Each metric of the stack's functions carries the dimensions `Environment` and `service` (Powertools
adds the latter); a `Pool` metric is one metric per pool. The worker's (workers/queue_worker) carry
`Pool` and `service` (queue-worker) only; they are listed here too, so that the worker emits
through this list and the alarms on them are checked.
CloudWatch bills a custom metric for each hour it receives a datapoint, so what an idle stack pays
for is the metrics published every minute (none with the default pools, all sized by the scaler);
the others are published only when something happens (a failure, an event, a non-zero figure).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Metric(StrEnum):
    # ScalerFunction
    DESCRIBE_GROUPS_ERRORS = "DescribeGroupsErrors"
    LEAVING_READ_ERRORS = "LeavingReadErrors"
    QUEUE_READ_ERRORS = "QueueReadErrors"
    POOL_ERRORS = "PoolErrors"
    HISTORY_WRITE_ERRORS = "HistoryWriteErrors"
    CONCURRENT_TICKS = "ConcurrentTicks"
    FUTURE_HISTORY_ENTRIES = "FutureHistoryEntries"
    HISTORY_ITEMS_SKIPPED = "HistoryItemsSkipped"
    SCALE_ACTIONS = "ScaleActions"
    INSTANCE_REFRESHES_STARTED = "InstanceRefreshesStarted"
    INSTANCE_REFRESH_ERRORS = "InstanceRefreshErrors"
    # ScalerFunction, the signals' figures: only for pools whose signals report them (docs/signals.md)
    FORECAST_ARRIVAL_RATE = "ForecastArrivalRate"
    FORECAST_ERROR = "ForecastError"
    FORECAST_CAPACITY = "ForecastCapacity"
    FORECAST_ADDED = "ForecastAdded"
    SCHEDULE_FLOOR = "ScheduleFloor"
    # MetricsFunction
    BACKLOG_PER_INSTANCE = "BacklogPerInstance"
    BACKLOG_WHILE_AT_ZERO = "BacklogWhileAtZero"
    BACKLOG_AT_MAX = "BacklogAtMax"
    DEAD_LETTERS_WAITING = "DeadLettersWaiting"
    # LifecycleFunction
    LIFECYCLE_ACTIONS_PENDING = "LifecycleActionsPending"
    LIFECYCLE_ACTIONS_COMPLETED = "LifecycleActionsCompleted"
    LIFECYCLE_ACTIONS_FAILED = "LifecycleActionsFailed"
    LIFECYCLE_ACTIONS_FORCED = "LifecycleActionsForced"
    LIFECYCLE_ACTIONS_ALREADY_DONE = "LifecycleActionsAlreadyDone"
    LIFECYCLE_ACTIONS_DISCOVERED = "LifecycleActionsDiscovered"
    LIFECYCLE_ACTIONS_UNREADABLE = "LifecycleActionsUnreadable"
    LAUNCHES_ABANDONED = "LaunchesAbandoned"
    DRAIN_SECONDS = "DrainSeconds"
    LIFECYCLE_HEARTBEATS = "LifecycleHeartbeats"
    LIFECYCLE_DUPLICATE_EVENTS = "LifecycleDuplicateEvents"
    LIFECYCLE_EVENTS_IGNORED = "LifecycleEventsIgnored"
    LIFECYCLE_CONCURRENT_UPDATES = "LifecycleConcurrentUpdates"
    LIFECYCLE_ERRORS = "LifecycleErrors"
    SPOT_INTERRUPTIONS = "SpotInterruptions"
    REBALANCE_RECOMMENDATIONS = "RebalanceRecommendations"
    DRAINS_UNRECORDED = "DrainsUnrecorded"
    WORKERS_MARKED_UNHEALTHY = "WorkersMarkedUnhealthy"
    # DlqRefundFunction
    REFUNDS = "Refunds"
    REFUNDED_CREDITS = "RefundedCredits"
    FAILURES_RECORDED = "FailuresRecorded"
    JOBS_FAILED_FOR_GOOD = "JobsFailedForGood"
    DUPLICATE_DELIVERIES = "DuplicateDeliveries"
    NOTIFICATIONS = "Notifications"
    PARKED_RECORDS = "ParkedRecords"
    PARKED_TRUNCATED = "ParkedTruncated"
    REFUND_ERRORS = "RefundErrors"
    NOTIFICATION_ERRORS = "NotificationErrors"
    NOTICES_PENDING = "NoticesPending"
    NOTICES_TAKEN_OVER = "NoticesTakenOver"
    NOTICE_CLAIMS_LOST = "NoticeClaimsLost"
    NOTICES_UNCONFIRMED = "NoticesUnconfirmed"
    COMPLETED_DEAD_LETTERS = "CompletedDeadLetters"
    DEAD_LETTERS_RETURNED = "DeadLettersReturned"
    RETURNS_EXHAUSTED = "ReturnsExhausted"
    DEAD_LETTERS_OF_RUNNING_JOBS = "DeadLettersOfRunningJobs"
    # queue_scaler.producer, in the producer's own process (not the stack's)
    JOBS_SUBMITTED = "JobsSubmitted"
    DUPLICATE_SUBMITS = "DuplicateSubmits"
    SUBMIT_ERRORS = "SubmitErrors"
    SUBMIT_MARK_ERRORS = "SubmitMarkErrors"
    SUBMIT_SEND_UNKNOWN = "SubmitSendUnknown"
    RELEASE_ERRORS = "ReleaseErrors"
    RESERVATIONS_RELEASED = "ReservationsReleased"
    # queue_worker (workers/), on the pools' instances: Pool and service=queue-worker, no Environment
    JOBS_COMPLETED = "JobsCompleted"
    JOBS_FAILED = "JobsFailed"
    JOB_SECONDS = "JobSeconds"
    QUEUE_WAIT_SECONDS = "QueueWaitSeconds"
    JOBS_REFUSED = "JobsRefused"
    LEASE_CONFLICTS = "LeaseConflicts"
    LEASE_ERRORS = "LeaseErrors"
    DUPLICATES_SKIPPED = "DuplicatesSkipped"


class Dimensions(StrEnum):
    STACK = "Environment, service"
    POOL = "Environment, Pool, service"
    WORKER = "Pool, service"

    @property
    def names(self) -> frozenset[str]:
        """The dimension names, as an alarm on the metric lists them."""
        return frozenset(self.value.split(", "))


class Published(StrEnum):
    EVERY_MINUTE = "every minute"
    EVERY_MINUTE_IF_TRACKED = "every minute, for each pool in target-tracking ScalingMode"
    EVERY_MINUTE_IF_CONFIGURED = "every minute, for each pool whose signals report it (a forecast not off, schedules)"
    ON_EVENT = "only when it happens (or is not 0)"


@dataclass(frozen=True)
class MetricSpec:
    metric: Metric
    dimensions: Dimensions = Dimensions.STACK
    published: Published = Published.ON_EVENT
    unit: str = "Count"
    """The CloudWatch unit it is sent in (Powertools' MetricUnit value)."""


# Only what differs from the default (stack-wide, on event) is listed.
_SPECS = {
    Metric.SCALE_ACTIONS: MetricSpec(Metric.SCALE_ACTIONS, Dimensions.POOL),
    # Target tracking needs a datapoint every minute, 0 included, or it cannot scale in; a pool the
    # scaler sizes needs none.
    Metric.BACKLOG_PER_INSTANCE: MetricSpec(
        Metric.BACKLOG_PER_INSTANCE, Dimensions.POOL, Published.EVERY_MINUTE_IF_TRACKED
    ),
    # A pool's signal figures, every tick (0 included, so a graph has no gaps) for each pool that
    # configures them; the default pools configure none (tests/functional/test_idle_cost.py).
    **{
        m: MetricSpec(m, Dimensions.POOL, Published.EVERY_MINUTE_IF_CONFIGURED, unit)
        for m, unit in (
            (Metric.FORECAST_ARRIVAL_RATE, "Count/Second"),
            (Metric.FORECAST_ERROR, "Count/Second"),
            (Metric.FORECAST_CAPACITY, "Count"),
            (Metric.FORECAST_ADDED, "Count"),
            (Metric.SCHEDULE_FLOOR, "Count"),
        )
    },
    Metric.BACKLOG_WHILE_AT_ZERO: MetricSpec(Metric.BACKLOG_WHILE_AT_ZERO, Dimensions.POOL),
    Metric.BACKLOG_AT_MAX: MetricSpec(Metric.BACKLOG_AT_MAX, Dimensions.POOL),
    # The worker's counters, each one only when it happens (a worker on an empty pool sends none).
    Metric.JOBS_COMPLETED: MetricSpec(Metric.JOBS_COMPLETED, Dimensions.WORKER),
    Metric.JOBS_FAILED: MetricSpec(Metric.JOBS_FAILED, Dimensions.WORKER),
    Metric.JOB_SECONDS: MetricSpec(Metric.JOB_SECONDS, Dimensions.WORKER),
    Metric.QUEUE_WAIT_SECONDS: MetricSpec(Metric.QUEUE_WAIT_SECONDS, Dimensions.WORKER),
    Metric.JOBS_REFUSED: MetricSpec(Metric.JOBS_REFUSED, Dimensions.WORKER),
    Metric.LEASE_CONFLICTS: MetricSpec(Metric.LEASE_CONFLICTS, Dimensions.WORKER),
    Metric.LEASE_ERRORS: MetricSpec(Metric.LEASE_ERRORS, Dimensions.WORKER),
    Metric.DUPLICATES_SKIPPED: MetricSpec(Metric.DUPLICATES_SKIPPED, Dimensions.WORKER),
}

METRICS: tuple[MetricSpec, ...] = tuple(_SPECS.get(m, MetricSpec(m)) for m in Metric)
SPECS: dict[Metric, MetricSpec] = {spec.metric: spec for spec in METRICS}

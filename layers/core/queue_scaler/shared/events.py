"""Events that invoke the functions, as validated models.

The scaler accepts every trigger AWS can send it (EventBridge rule schedules, EventBridge Scheduler
schedules, alarm state changes through EventBridge, an alarm's direct Lambda action) and any other
payload too, described as unrecognised. The lifecycle function accepts Auto Scaling lifecycle
actions, EC2 Spot warnings, SSM command status changes and its reconciler's schedule. `version` is
optional because `sam local generate-event cloudwatch scheduled-event` omits it (Powertools'
EventBridgeModel requires it, so it is not used here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PlainValidator, RootModel, Tag, TypeAdapter


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="allow")
    value: str
    reason: str = ""


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    alarm_name: str = Field(alias="alarmName")
    state: AlarmState


class _EventBridgeEvent(BaseModel):
    """The envelope EventBridge puts around every event (`version` optional, see above)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str | None = None
    id: str | None = None
    account: str | None = None
    time: str | None = None
    region: str | None = None
    resources: list[str] = Field(default_factory=list)

    def occurred_at(self, received: float) -> float:
        """When the event happened (its `time`), in epoch seconds; `received` when it has no readable time.

        Never later than `received`: a sender's clock ahead of ours must not lengthen a deadline.
        """
        if not self.time:
            return received
        try:
            at = datetime.fromisoformat(self.time.replace("Z", "+00:00"))
        except ValueError:
            return received
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return min(at.timestamp(), received)


class ScheduleTrigger(_EventBridgeEvent):
    """A schedule: an EventBridge rule (`aws.events`, with or without `version`) or an EventBridge
    Scheduler schedule (`aws.scheduler`, whose `detail` is the string "{}")."""

    source: Literal["aws.events", "aws.scheduler"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    detail: dict[str, Any] | str = Field(default_factory=dict)

    def describe(self) -> str:
        kind = "EventBridge Scheduler schedule" if self.source == "aws.scheduler" else "schedule"
        return f"{kind} {','.join(self.resources)}" if self.resources else kind


class AlarmStateChangeTrigger(_EventBridgeEvent):
    """An alarm's state change, delivered by an EventBridge rule."""

    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    detail: AlarmDetail

    def describe(self) -> str:
        return f"alarm {self.detail.alarm_name} is {self.detail.state.value}"


class AlarmActionTrigger(BaseModel):
    """An alarm's direct Lambda action: the alarm invokes the function itself, with `alarmData` and
    no `detail-type` (CloudWatch's documented payload for Lambda alarm actions)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    source: Literal["aws.cloudwatch"]
    alarm_arn: str = Field(alias="alarmArn")
    alarm_data: AlarmDetail = Field(alias="alarmData")

    def describe(self) -> str:
        return f"alarm {self.alarm_data.alarm_name} is {self.alarm_data.state.value} (alarm action)"


class UnknownTrigger(RootModel[Any]):
    """Any other payload. The scaler still ticks: a trigger never changes what a tick does, and an
    event shape AWS adds (or a hand-made test invocation) must not cost the fleet its tick."""

    def describe(self) -> str:
        if isinstance(self.root, dict):
            keys = ", ".join(sorted(str(k) for k in self.root)[:8]) or "no keys"
            return f"unrecognised trigger ({keys}; source {self.root.get('source', 'none')}), ticking anyway"
        return f"unrecognised trigger (a JSON {type(self.root).__name__}), ticking anyway"


class ScalerTrigger(
    RootModel[
        Annotated[
            ScheduleTrigger | AlarmStateChangeTrigger | AlarmActionTrigger | UnknownTrigger,
            Field(union_mode="left_to_right"),
        ]
    ]
):
    """What woke the scaler; `.root` is the specific model, UnknownTrigger when no known shape fits."""

    @property
    def known(self) -> bool:
        return not isinstance(self.root, UnknownTrigger)

    def describe(self) -> str:
        return self.root.describe()


# Lifecycle events (LifecycleFunction): the EventBridge payloads exactly as AWS sends them, plus the
# Auto Scaling test notification and the reconciler's schedule. Unknown fields are allowed: AWS adds
# fields to events over time, and a new field must not stop a drain.


class LifecycleActionDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    token: str = Field(alias="LifecycleActionToken")
    group: str = Field(alias="AutoScalingGroupName")
    hook: str = Field(alias="LifecycleHookName")
    instance_id: str = Field(alias="EC2InstanceId")
    transition: Literal["autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"] = Field(
        alias="LifecycleTransition"
    )
    # Where the instance comes from and goes to (EC2 | AutoScalingGroup | WarmPool): AWS sends both
    # "if that information is available" (EC2 Auto Scaling event reference), so an event without them
    # is an ordinary launch or termination, as before warm pools.
    origin: Literal["EC2", "AutoScalingGroup", "WarmPool"] | None = Field(default=None, alias="Origin")
    destination: Literal["EC2", "AutoScalingGroup", "WarmPool"] | None = Field(default=None, alias="Destination")

    @property
    def into_warm_pool(self) -> bool:
        """The instance is headed for the warm pool: a launch into it (Warmed:Pending:Wait), or a
        scale-in that returns it there (ReuseOnScaleIn), not a launch into service or a termination."""
        return self.destination == "WarmPool"

    @property
    def from_warm_pool(self) -> bool:
        """The instance leaves the warm pool (for service, Pending:Wait, or to be terminated)."""
        return self.origin == "WarmPool"


class LifecycleActionEvent(_EventBridgeEvent):
    """An instance entered Pending:Wait, Warmed:Pending:Wait or Terminating:Wait because of one of our hooks."""

    source: Literal["aws.autoscaling"]
    detail_type: Literal["EC2 Instance-launch Lifecycle Action", "EC2 Instance-terminate Lifecycle Action"] = Field(
        alias="detail-type"
    )
    detail: LifecycleActionDetail


class InstanceDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    instance_id: str = Field(alias="instance-id")


class SpotInterruptionEvent(_EventBridgeEvent):
    """EC2 reclaims the Spot instance in two minutes."""

    source: Literal["aws.ec2"]
    detail_type: Literal["EC2 Spot Instance Interruption Warning"] = Field(alias="detail-type")
    detail: InstanceDetail


class RebalanceRecommendationEvent(_EventBridgeEvent):
    """The Spot instance is at elevated risk of interruption."""

    source: Literal["aws.ec2"]
    detail_type: Literal["EC2 Instance Rebalance Recommendation"] = Field(alias="detail-type")
    detail: InstanceDetail


class CommandStatusDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    command_id: str = Field(alias="command-id")
    instance_id: str = Field(alias="instance-id")
    status: str


class CommandStatusEvent(_EventBridgeEvent):
    """One instance's SSM command changed status: a drain or a health check may have finished."""

    source: Literal["aws.ssm"]
    detail_type: Literal["EC2 Command Invocation Status-change Notification"] = Field(alias="detail-type")
    detail: CommandStatusDetail


class ReconcileSchedule(_EventBridgeEvent):
    """The reconciler's minute schedule (`version` optional: `sam local generate-event` omits it)."""

    source: Literal["aws.events"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    detail: dict[str, Any] = Field(default_factory=dict)


LifecycleEvent = _EventBridgeEvent
"""Any event LifecycleFunction takes: one of the models of LIFECYCLE_EVENT_KINDS."""


@dataclass(frozen=True)
class LifecycleEventKind:
    """One kind of event LifecycleFunction takes, and everything that must exist for it to arrive.

    `model` is the payload's pydantic model; its `source` and `detail_type` Literals are the
    EventBridge pattern that selects it (and the value its payload is told apart by). `handler` names
    the `LifecycleService` method that acts on it, `handler(event, now) -> reports`. `rule` is the
    template's logical id of the EventBridge rule that delivers it: through LifecycleEventsQueue, or,
    `via_queue=False`, by invoking the function itself (the reconciler's schedule). The union the
    function parses, its dispatch, and what tests/contract expects of the template
    (devkit/lifecycle_wiring.py: each rule's pattern, the queue policy's sources, the rule-failures
    alarm's sum, the pools' DependsOn) all derive from this table.
    """

    tag: str
    model: type[LifecycleEvent]
    handler: str
    rule: str
    via_queue: bool = True

    @property
    def sources(self) -> tuple[str, ...]:
        return _literals(self.model, "source")

    @property
    def detail_types(self) -> tuple[str, ...]:
        return _literals(self.model, "detail_type")


def _literals(model: type[BaseModel], field: str) -> tuple[str, ...]:
    values = get_args(model.model_fields[field].annotation)
    if not values or not all(isinstance(v, str) for v in values):
        raise TypeError(f"{model.__name__}.{field} must be a Literal of strings: it is the rule's pattern")
    return tuple(values)


#: Every kind of event LifecycleFunction takes (ARCHITECTURE.md: "add a lifecycle event kind").
LIFECYCLE_EVENT_KINDS: tuple[LifecycleEventKind, ...] = (
    LifecycleEventKind("hook", LifecycleActionEvent, "on_hook", "LifecycleActionsRule"),
    LifecycleEventKind("spot", SpotInterruptionEvent, "on_spot", "SpotNoticesRule"),
    LifecycleEventKind("rebalance", RebalanceRecommendationEvent, "on_rebalance", "SpotNoticesRule"),
    LifecycleEventKind("command", CommandStatusEvent, "on_command", "CommandResultsRule"),
    LifecycleEventKind("schedule", ReconcileSchedule, "on_schedule", "LifecycleFunctionReconcile", via_queue=False),
)


def lifecycle_kind(event: LifecycleEvent) -> LifecycleEventKind:
    """The table's row for a parsed event (by its model)."""
    for kind in LIFECYCLE_EVENT_KINDS:
        if type(event) is kind.model:
            return kind
    raise LookupError(f"{type(event).__name__} is not in queue_scaler.shared.events.LIFECYCLE_EVENT_KINDS")


@cache
def _lifecycle_adapter(kinds: tuple[LifecycleEventKind, ...]) -> TypeAdapter[LifecycleEvent]:
    tags = {detail_type: kind.tag for kind in kinds for detail_type in kind.detail_types}
    if len(tags) != sum(len(kind.detail_types) for kind in kinds):
        raise ValueError("two lifecycle event kinds share a detail-type: the payload cannot tell them apart")

    def tag_of(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            value = value.model_dump(by_alias=True)
        if not isinstance(value, dict):
            return None
        return tags.get(str(value.get("detail-type")))

    # A union of the table's models, each tagged with its kind: built at run time, so typed Any.
    members: Any = tuple(Annotated[kind.model, Tag(kind.tag)] for kind in kinds)
    annotation: Any = Annotated[
        Union[members],  # noqa: UP007 (a union of a run-time tuple has no `|` spelling)
        Discriminator(
            tag_of,
            custom_error_type="unsupported_event",
            custom_error_message="unsupported detail-type for LifecycleFunction",
        ),
    ]
    return TypeAdapter(annotation)


def _parse_lifecycle_event(value: Any) -> LifecycleEvent:
    # The table is read at each parse (the adapter is cached per table), so a kind registered later
    # (a test's toy kind) parses too.
    return _lifecycle_adapter(LIFECYCLE_EVENT_KINDS).validate_python(value)


class LifecycleTrigger(RootModel[Annotated[LifecycleEvent, PlainValidator(_parse_lifecycle_event)]]):
    """Any event LifecycleFunction accepts (LIFECYCLE_EVENT_KINDS); `.root` is the specific model."""


class ScheduledEvent(BaseModel):
    """An EventBridge schedule's event, with or without `version` (see the module's docstring)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str | None = None
    id: str | None = None
    source: Literal["aws.events"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    resources: list[str] = Field(default_factory=list)


class DeadLetterAttributes(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    approximate_receive_count: int | None = Field(default=None, alias="ApproximateReceiveCount")
    dead_letter_queue_source_arn: str | None = Field(default=None, alias="DeadLetterQueueSourceArn")


class DeadLetter(BaseModel):
    """One SQS record from a dead-letter queue, as Lambda delivers it (only the fields the refund reads).

    The body is kept as the raw string: validating it as a job envelope is the refund's job, so that a
    malformed body is parked with its reason instead of failing the whole record here.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    message_id: str = Field(alias="messageId")
    body: str
    attributes: DeadLetterAttributes = Field(default_factory=DeadLetterAttributes)
    event_source_arn: str | None = Field(default=None, alias="eventSourceARN")

    @property
    def source_queue(self) -> str | None:
        """The job queue the message was dead-lettered from (DeadLetterQueueSourceArn's last part)."""
        arn = self.attributes.dead_letter_queue_source_arn
        return arn.rsplit(":", 1)[-1] if arn else None

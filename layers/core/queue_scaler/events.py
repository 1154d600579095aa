"""Events that invoke the functions, as validated models.

The scaler accepts EventBridge scheduled events and CloudWatch alarm state changes. `version` is
optional because `sam local generate-event cloudwatch scheduled-event` omits it (Powertools'
EventBridgeModel requires it, so it is not used here).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="allow")
    value: str
    reason: str = ""


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    alarm_name: str = Field(alias="alarmName")
    state: AlarmState


class ScalerTrigger(BaseModel):
    """What woke the scaler: the minute schedule, or an alarm such as "backlog while at zero"."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str | None = None
    id: str | None = None
    source: Literal["aws.events", "aws.cloudwatch"]
    detail_type: Literal["Scheduled Event", "CloudWatch Alarm State Change"] = Field(alias="detail-type")
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)

    def describe(self) -> str:
        if self.detail_type == "CloudWatch Alarm State Change":
            alarm = AlarmDetail.model_validate(self.detail)
            return f"alarm {alarm.alarm_name} is {alarm.state.value}"
        return "schedule " + ",".join(self.resources) if self.resources else "schedule"


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

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

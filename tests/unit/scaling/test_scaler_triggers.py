"""Every trigger AWS can send the scaler is recognised and described; anything else still ticks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from queue_scaler.shared.events import (
    AlarmActionTrigger,
    AlarmStateChangeTrigger,
    ScalerTrigger,
    ScheduleTrigger,
    UnknownTrigger,
)

EVENTS = Path(__file__).resolve().parents[3] / "events" / "scaler"


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


CASES = [
    # (name, event, model, description contains)
    ("given an EventBridge rule schedule then a schedule", sample("scheduled.json"), ScheduleTrigger, "schedule arn"),
    (
        "given sam generate-event output without version then a schedule",
        sample("sam-generated-scheduled.json"),
        ScheduleTrigger,
        "rule/ExampleRule",
    ),
    (
        "given an EventBridge Scheduler event with detail the string {} then a Scheduler schedule",
        sample("scheduler.json"),
        ScheduleTrigger,
        "EventBridge Scheduler schedule",
    ),
    (
        "given an alarm state change through EventBridge then that alarm and its state",
        sample("alarm-backlog-at-zero.json"),
        AlarmStateChangeTrigger,
        "is ALARM",
    ),
    (
        "given an alarm's direct Lambda action then that alarm and its state",
        sample("lambda-alarm-action.json"),
        AlarmActionTrigger,
        "queue-scaler-dev-video-backlog-at-zero is ALARM (alarm action)",
    ),
    ("given an empty object then unrecognised", {}, UnknownTrigger, "no keys"),
    (
        "given an unknown detail-type then unrecognised, naming its source",
        {"source": "aws.events", "detail-type": "Not A Schedule"},
        UnknownTrigger,
        "source aws.events",
    ),
    (
        "given a malformed alarm state change then unrecognised rather than an error",
        {"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {}},
        UnknownTrigger,
        "ticking anyway",
    ),
    ("given a JSON list then unrecognised", [1, 2], UnknownTrigger, "a JSON list"),
]


@pytest.mark.parametrize(("event", "model", "described"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_trigger_shapes(event: Any, model: type, described: str) -> None:
    trigger = ScalerTrigger.model_validate(event)
    assert isinstance(trigger.root, model)
    assert trigger.known is (model is not UnknownTrigger)
    assert described in trigger.describe()

"""`--local`: the samples' dev-stack names and instance ids mapped onto the local cloud's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devkit.localenv import LocalCloudTarget, NoInstanceYet, NoPendingCommand, _localize_event, localize

EVENTS = Path(__file__).resolve().parents[3] / "events"
TARGET = LocalCloudTarget(
    Path("x"), "http://127.0.0.1:1", "us-east-1", "queue-scaler-local", "http://127.0.0.1:2/status"
)


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def status(pools: dict[str, list[tuple[str, str, bool]]], leaving: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "pools": {
            pool: {
                "group": f"queue-scaler-local-{pool}",
                "instances": [{"id": i, "state": state, "healthy": healthy} for i, state, healthy in instances],
            }
            for pool, instances in pools.items()
        },
        "lifecycle": {"recorded": [{"instance_id": i, "kind": "terminate"} for i in leaving]},
    }


def test_given_a_dead_letter_batch_when_localized_then_arns_and_bodies_name_the_local_stack() -> None:
    batch = localize(sample("dlq_refund/batch.json"), "queue-scaler-local")
    record = batch["Records"][0]
    assert record["attributes"]["DeadLetterQueueSourceArn"].endswith(":queue-scaler-local-video-pro")
    assert "queue-scaler-dev" not in json.dumps(batch)


CASES = [
    (
        "given the sample's group has a healthy instance then that one",
        "lifecycle/terminate.json",
        {"messaging": [("i-aaa111aaa", "InService", True)], "video": [("i-bbb222bbb", "InService", True)]},
        (),
        ("i-bbb222bbb", "queue-scaler-local-video"),
    ),
    (
        "given the sample's group has none then another group's, and the group follows it",
        "lifecycle/terminate.json",
        {"messaging": [("i-aaa111aaa", "InService", True)], "video": [("i-bbb222bbb", "Pending", False)]},
        (),
        ("i-aaa111aaa", "queue-scaler-local-messaging"),
    ),
    (
        "given an instance already draining then another one",
        "lifecycle/spot-interruption.json",
        {"messaging": [("i-aaa111aaa", "InService", True), ("i-ccc333ccc", "InService", True)]},
        ("i-aaa111aaa",),
        ("i-ccc333ccc", None),
    ),
]


@pytest.mark.parametrize(("name", "pools", "leaving", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_instance_placeholders(
    name: str, pools: dict[str, list[tuple[str, str, bool]]], leaving: tuple[str, ...], expected: tuple[str, str | None]
) -> None:
    event = _localize_event(sample(name), TARGET, status(pools, leaving))
    instance, group = expected
    text = json.dumps(event)
    assert instance in text and "i-0a1b2c3d4e5f60718" not in text
    if group is not None:
        assert event["detail"]["AutoScalingGroupName"] == group
        assert event["resources"][0].endswith(f"autoScalingGroupName/{group}")


def test_given_no_healthy_instance_when_localizing_a_lifecycle_sample_then_it_says_so() -> None:
    with pytest.raises(NoInstanceYet, match="i-0a1b2c3d4e5f60718"):
        _localize_event(sample("lifecycle/launch.json"), TARGET, status({"video": [("i-b", "Pending", False)]}))


def with_actions(base: dict[str, Any], *actions: dict[str, str]) -> dict[str, Any]:
    return {**base, "lifecycle": {"recorded": list(actions)}}


IDLE = status({"video": [("i-bbb222bbb", "InService", True)]})


def test_given_a_pending_drain_command_when_localizing_a_status_sample_then_it_reports_on_that_command() -> None:
    # The drained instance has left the group already: the event must still name it, not another one.
    done = {"instance_id": "i-ddd444ddd", "kind": "terminate", "state": "completed", "command_id": "c-old"}
    pending = {"instance_id": "i-eee555eee", "kind": "terminate", "state": "pending", "command_id": "c-42"}
    event = _localize_event(
        sample("lifecycle/command-invocation-status.json"), TARGET, with_actions(IDLE, done, pending)
    )
    assert event["detail"]["command-id"] == "c-42"
    assert event["detail"]["instance-id"] == "i-eee555eee"
    assert event["resources"] == ["arn:aws:ec2:us-east-1:123456789012:instance/i-eee555eee"]


def test_given_no_pending_command_when_localizing_a_status_sample_then_it_says_what_to_invoke_first() -> None:
    noted = {"instance_id": "i-bbb222bbb", "kind": "rebalance", "state": "pending"}
    with pytest.raises(NoPendingCommand, match=r"terminate\.json"):
        _localize_event(sample("lifecycle/command-invocation-status.json"), TARGET, with_actions(IDLE, noted))


def test_given_an_sqs_batch_sample_when_localized_then_each_body_event_is_sent_now_on_a_local_instance() -> None:
    batch = _localize_event(sample("lifecycle/sqs-batch.json"), TARGET, IDLE)
    hook = json.loads(batch["Records"][0]["body"])
    assert abs(datetime.fromisoformat(hook["time"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert hook["detail"]["EC2InstanceId"] == "i-bbb222bbb"
    assert hook["detail"]["AutoScalingGroupName"] == "queue-scaler-local-video"

"""Lifecycle events are never lost: a terminate event that never arrives still ends in a drain."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from devkit.localcloud.control import down
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
GROUP = "queue-scaler-local-video"
TERMINATE_EVENT = "EC2 Instance-terminate Lifecycle Action"


def test_given_a_dropped_terminate_event_and_a_malformed_item_when_scaled_in_then_the_drain_still_completes(
    cloud_factory: Any,
) -> None:
    cloud = cloud_factory(schedule_seconds=0, drop_lifecycle_events=(TERMINATE_EVENT,))
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    autoscaling = session.client("autoscaling", endpoint_url=cloud.endpoint_url)
    # An item no reconciler run can read as an action: it must not stop the others.
    session.client("dynamodb", endpoint_url=cloud.endpoint_url).put_item(
        TableName="queue-scaler-local-lifecycle-actions",
        Item={"instance_id": {"S": "i-0bad"}, "action": {"S": "terminate#x"}, "state": {"S": "pending"}},
    )

    def pool() -> dict[str, Any]:
        return dict(cloud.status()["pools"]["video"])

    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2, HonorCooldown=False)
    wait_for(lambda: pool()["in_service"] == 2, 90, "2 in service")
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1, HonorCooldown=False)
    wait_for(lambda: len(pool()["instances"]) == 1, 90, "the scaled-in instance to go")

    status = cloud.status()
    lifecycle = status["lifecycle"]
    finished = [w for w in status["workers"]["finished"] if w["pool"] == "video"]
    lifecycle_function = status["functions"]["LifecycleFunction"]
    down(cloud.state_dir)

    assert status["dropped_lifecycle_events"] == {TERMINATE_EVENT: 1}
    # The reconciler found the instance at its hook: drained (SIGTERM, exit 0) and completed with
    # CONTINUE before the hook's timeout; no action timed out.
    assert len(finished) == 1 and finished[0]["exit_code"] == 0 and finished[0]["signals"] == ["SIGTERM"]
    assert lifecycle["timed_out"] == 0 and lifecycle["pending"] == 0
    assert lifecycle["results"].get("CONTINUE", 0) == lifecycle["completed"]
    # The malformed item was skipped, never raised.
    assert lifecycle_function["errors"] == 0, lifecycle_function["last_error"]

"""The Auto Scaling adapter's instance refresh calls, with botocore's Stubber (moto 5.2.5 implements no
instance refresh): the requests are checked against the API's shapes, the answers parsed as AWS
sends them, the errors turned into the domain's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from queue_scaler.scaling.adapters.autoscaling import REFRESH_PREFERENCES, AutoScalingFleet
from queue_scaler.shared.errors import Throttled

GROUP = "qs-video"


@pytest.fixture
def stubbed() -> Iterator[tuple[AutoScalingFleet, Stubber]]:
    client = boto3.client("autoscaling", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield AutoScalingFleet(client), stubber
        stubber.assert_no_pending_responses()


def _instance(instance_id: str, version: str, state: str = "InService") -> dict[str, Any]:
    return {
        "InstanceId": instance_id,
        "AvailabilityZone": "us-east-1a",
        "LifecycleState": state,
        "HealthStatus": "Healthy",
        "ProtectedFromScaleIn": True,
        "LaunchTemplate": {"LaunchTemplateId": "lt-0abc", "LaunchTemplateName": "workers", "Version": version},
    }


def _group(version: str, instances: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "AutoScalingGroupName": GROUP,
        "MinSize": 0,
        "MaxSize": 10,
        "DesiredCapacity": len(instances),
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2",
        "CreatedTime": "2026-01-01T00:00:00Z",
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": "lt-0abc",
                    "LaunchTemplateName": "workers",
                    "Version": version,
                }
            }
        },
        "Instances": instances,
    }


def _describe(stubber: Stubber, group: dict[str, Any]) -> None:
    stubber.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [group]},
        {"AutoScalingGroupNames": [GROUP], "MaxRecords": 100},
    )


def test_given_instances_of_an_older_version_when_described_then_they_are_outdated(stubbed) -> None:
    fleet, stubber = stubbed
    instances = [_instance("i-old", "2"), _instance("i-new", "3"), _instance("i-going", "2", "Terminating:Wait")]
    _describe(stubber, _group("3", instances))
    group = fleet.describe([GROUP])[GROUP]
    assert group.launch_template == "lt-0abc:3"
    assert (group.updating(), group.outdated()) == (True, 1)


def test_given_only_a_draining_old_instance_left_when_described_then_the_group_is_still_updating(stubbed) -> None:
    fleet, stubber = stubbed
    _describe(stubber, _group("3", [_instance("i-new", "3"), _instance("i-going", "2", "Terminating:Wait")]))
    group = fleet.describe([GROUP])[GROUP]
    assert (group.updating(), group.outdated()) == (True, 0)


def test_given_a_group_on_latest_when_described_then_no_version_is_compared(stubbed) -> None:
    fleet, stubber = stubbed
    _describe(stubber, _group("$Latest", [_instance("i-a", "2"), _instance("i-b", "3")]))
    group = fleet.describe([GROUP])[GROUP]
    assert group.launch_template is None and not group.updating()


ENDED = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("statuses", "seconds_since_end", "state"),
    [
        ([], None, "none"),
        (["Successful"], 10, "none"),
        (["InProgress"], None, "running"),
        (["Pending"], None, "running"),
        (["Cancelling"], None, "running"),
        (["RollbackInProgress"], None, "running"),
        (["Baking"], None, "running"),
        # A failed refresh is not started again every tick (launching and abandoning a bad image in a
        # loop); an hour later, or after a new deploy by hand, it is.
        (["Failed"], 10, "failed"),
        (["Cancelled"], 3599, "failed"),
        (["RollbackSuccessful"], 60, "failed"),
        (["RollbackFailed"], 60, "failed"),
        (["Failed"], 3600, "none"),
    ],
)
def test_given_the_latest_refresh_when_asked_then_its_state_says_whether_it_runs_or_failed_lately(
    stubbed, statuses: list[str], seconds_since_end: int | None, state: str
) -> None:
    fleet, stubber = stubbed
    refreshes = [
        {"InstanceRefreshId": "r-1", "AutoScalingGroupName": GROUP, "Status": s}
        | ({} if seconds_since_end is None else {"EndTime": ENDED})
        for s in statuses
    ]
    stubber.add_response(
        "describe_instance_refreshes",
        {"InstanceRefreshes": refreshes},
        {"AutoScalingGroupName": GROUP, "MaxRecords": 1},
    )
    now = ENDED.timestamp() + (seconds_since_end or 0)
    assert fleet.refresh_state(GROUP, now) == state


def test_given_a_refresh_to_start_then_it_launches_before_it_terminates_and_replaces_protected_instances(
    stubbed,
) -> None:
    fleet, stubber = stubbed
    expected = {
        "AutoScalingGroupName": GROUP,
        "Strategy": "Rolling",
        "Preferences": {
            "SkipMatching": True,
            "MinHealthyPercentage": 100,
            "MaxHealthyPercentage": 200,
            "ScaleInProtectedInstances": "Refresh",
            "StandbyInstances": "Terminate",
            "InstanceWarmup": 0,
        },
    }
    assert expected["Preferences"] == REFRESH_PREFERENCES
    # The README gives the same preferences for a refresh started by hand (a target-tracking pool).
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"'{json.dumps(REFRESH_PREFERENCES)}'" in readme
    stubber.add_response("start_instance_refresh", {"InstanceRefreshId": "r-2"}, expected)
    assert fleet.start_refresh(GROUP) is True


def test_given_a_refresh_already_running_when_starting_then_it_is_not_an_error(stubbed) -> None:
    fleet, stubber = stubbed
    stubber.add_client_error(
        "start_instance_refresh", "InstanceRefreshInProgress", "An Instance Refresh is already in progress", 400
    )
    assert fleet.start_refresh(GROUP) is False


def test_given_throttling_when_starting_or_reading_then_it_is_a_domain_error(stubbed) -> None:
    fleet, stubber = stubbed
    stubber.add_client_error("start_instance_refresh", "Throttling", "Rate exceeded", 400)
    stubber.add_client_error("describe_instance_refreshes", "Throttling", "Rate exceeded", 400)
    with pytest.raises(Throttled, match="StartInstanceRefresh"):
        fleet.start_refresh(GROUP)
    with pytest.raises(Throttled, match="DescribeInstanceRefreshes"):
        fleet.refresh_state(GROUP, 0.0)

"""The local cloud's instance refresh, as Auto Scaling runs it, through the scaler's own adapter:
launch before terminate (MinHealthyPercentage 100, MaxHealthyPercentage 200), protected instances
replaced with ScaleInProtectedInstances "Refresh", an old instance and its replacement counted as one
of the desired capacity, one refresh at a time."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from devkit.localcloud.emulation import AutoScalingEmulator
from queue_scaler.scaling.adapters.autoscaling import AutoScalingFleet
from tests.functional.moto_stack import REGION
from tests.functional.test_local_scale_in import emulator  # noqa: F401 (the fixture)

GROUP = "video"


def autoscaling() -> Any:
    return boto3.client("autoscaling", region_name=REGION)


def states() -> dict[str, str]:
    [group] = autoscaling().describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}


def versions() -> dict[str, str]:
    [group] = autoscaling().describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LaunchTemplate"]["Version"] for i in group["Instances"]}


@pytest.fixture
def fleet(emulator: AutoScalingEmulator) -> AutoScalingFleet:  # noqa: F811
    """Three in-service instances of launch template version 1, one of them protected (a busy worker);
    then a deploy makes version 2 the group's."""
    ec2 = boto3.client("ec2", region_name=REGION)
    autoscaling().update_auto_scaling_group(
        AutoScalingGroupName=GROUP, LaunchTemplate={"LaunchTemplateName": "workers", "Version": "1"}
    )
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=3)
    for instance_id in states():
        emulator.set_state(instance_id, "InService")
    autoscaling().set_instance_protection(
        AutoScalingGroupName=GROUP, InstanceIds=[next(iter(states()))], ProtectedFromScaleIn=True
    )
    ec2.create_launch_template_version(
        LaunchTemplateName="workers", SourceVersion="1", LaunchTemplateData={"ImageId": "ami-0fe1c0a1e2b3c4d5e"}
    )
    autoscaling().update_auto_scaling_group(
        AutoScalingGroupName=GROUP, LaunchTemplate={"LaunchTemplateName": "workers", "Version": "2"}
    )
    return AutoScalingFleet(autoscaling())


def test_given_a_new_version_then_each_instance_reports_the_version_it_was_launched_from(
    fleet: AutoScalingFleet,
) -> None:
    group = fleet.describe([GROUP])[GROUP]
    assert group.launch_template is not None and group.launch_template.endswith(":2")
    assert set(versions().values()) == {"1"}
    assert (group.updating(), group.outdated()) == (True, 3)


def test_given_a_refresh_when_it_runs_then_replacements_launch_first_and_every_old_instance_goes(
    emulator: AutoScalingEmulator,  # noqa: F811
    fleet: AutoScalingFleet,
) -> None:
    old = set(states())
    assert fleet.start_refresh(GROUP) is True
    # AWS refuses a second refresh while one runs: the adapter says "already running".
    assert fleet.start_refresh(GROUP) is False
    assert fleet.refresh_state(GROUP, time.time()) == "running"

    emulator.advance_refreshes()
    launched = set(states()) - old
    # MaxHealthyPercentage 200: all three replacements at once; MinHealthyPercentage 100: no old one goes yet.
    assert len(launched) == 3 and all(states()[i] == "InService" for i in old)
    assert {versions()[i] for i in launched} == {"2"}

    # The scaler raises desired during the refresh: one more instance, the pairs counting as one each.
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=4)
    assert len(set(states()) - old - launched) == 1
    # Lowering it is what the scaler must not do; here the check is only that nothing else moved.
    assert all(states()[i] == "InService" for i in old)

    for instance_id in states().keys() - old:
        emulator.set_state(instance_id, "InService")
    emulator.advance_refreshes()
    # Each old instance, the protected one included, leaves through termination (the hook's drain
    # where there is a terminate hook; this group has none).
    assert all(states()[i] == "Terminating" for i in old)
    assert fleet.refresh_state(GROUP, time.time()) == "running"
    for instance_id in old:
        emulator.remove(instance_id)
    emulator.advance_refreshes()

    assert fleet.refresh_state(GROUP, time.time()) == "none"
    group = fleet.describe([GROUP])[GROUP]
    assert (group.desired, len(group.instances), group.updating()) == (4, 4, False)
    [refresh] = autoscaling().describe_instance_refreshes(AutoScalingGroupName=GROUP)["InstanceRefreshes"]
    assert (refresh["Status"], refresh["PercentageComplete"]) == ("Successful", 100)
    assert refresh["Preferences"]["ScaleInProtectedInstances"] == "Refresh"

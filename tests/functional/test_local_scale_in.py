"""The local cloud's Auto Scaling emulation chooses what to terminate as a real group does."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.autoscaling import models as asg_models
from moto.autoscaling.responses import AutoScalingResponse

from devkit.localcloud.emulation import AutoScalingEmulator
from tests.functional.moto_stack import REGION, create_group

GROUP = "video"


@pytest.fixture
def emulator(aws: None, monkeypatch: pytest.MonkeyPatch) -> AutoScalingEmulator:
    """The emulator installed for one test; moto's own methods come back afterwards."""
    for owner, name in [
        (asg_models.FakeAutoScalingGroup, "set_desired_capacity"),
        (asg_models.FakeAutoScalingGroup, "update"),
        (asg_models.AutoScalingBackend, "set_instance_protection"),
        (asg_models.InstanceState, "launch_template"),
    ]:
        monkeypatch.setattr(owner, name, owner.__dict__[name])
    for name in (
        "complete_lifecycle_action",
        "record_lifecycle_action_heartbeat",
        "start_instance_refresh",
        "describe_instance_refreshes",
    ):
        monkeypatch.setattr(AutoScalingResponse, name, None, raising=False)
    clock = {"now": 1000.0}
    emulator = AutoScalingEmulator(clock=lambda: clock["now"], on_event=lambda _event: None, region=REGION)
    emulator.install()
    create_group(GROUP)
    return emulator


def autoscaling() -> Any:
    return boto3.client("autoscaling", region_name=REGION)


def live() -> dict[str, dict[str, Any]]:
    [group] = autoscaling().describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return {i["InstanceId"]: i for i in group["Instances"] if not i["LifecycleState"].startswith("Terminating")}


def launch(emulator: AutoScalingEmulator, count: int) -> list[str]:
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=count)
    return [record.instance_id for record in emulator.instances.values()]


def protect(ids: list[str], on: bool = True) -> None:
    autoscaling().set_instance_protection(AutoScalingGroupName=GROUP, InstanceIds=ids, ProtectedFromScaleIn=on)


def test_given_protected_instances_when_scaled_in_then_only_unprotected_ones_are_chosen(
    emulator: AutoScalingEmulator,
) -> None:
    ids = launch(emulator, 4)
    protect(ids[:3])
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    # Desired 1 with 3 protected: the group keeps the protected three and waits.
    assert set(live()) == set(ids[:3])


def test_given_a_group_below_its_protected_instances_when_protection_is_removed_then_that_instance_goes(
    emulator: AutoScalingEmulator,
) -> None:
    ids = launch(emulator, 3)
    protect(ids)
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    assert set(live()) == set(ids)
    protect([ids[1]], on=False)
    assert set(live()) == {ids[0], ids[2]}
    protect([ids[0]], on=False)
    assert set(live()) == {ids[2]}
    # At the desired capacity, removing protection terminates nothing more.
    protect([ids[2]], on=False)
    assert set(live()) == {ids[2]}


def test_given_unprotected_instances_of_different_ages_when_scaled_in_then_the_default_policy_picks_the_oldest(
    emulator: AutoScalingEmulator,
) -> None:
    # Every instance is under an hour old, so "closest to the next billing hour" is the oldest; not
    # whether it is busy, which Auto Scaling cannot see.
    first = launch(emulator, 1)
    for n, record in enumerate(emulator.instances.values()):
        record.launched_at -= 100 + n
    later = [i for i in launch(emulator, 3) if i not in first]
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    assert first[0] not in live()
    assert len(live()) == 2 and set(live()) <= set(later)


def test_given_an_older_launch_template_version_when_scaled_in_then_its_instances_go_first(
    emulator: AutoScalingEmulator,
) -> None:
    ids = launch(emulator, 3)
    emulator.instances[ids[2]].template_version = -1  # launched from an older version than the others
    for record in emulator.instances.values():
        record.launched_at = 0.0 if record.instance_id != ids[2] else 999.0  # and the youngest
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    assert ids[2] not in live()

"""The local cloud's warm pool runs as AWS runs one: prepared outside desired capacity through the launch
hook (Origin EC2, Destination WarmPool), waiting Warmed:Stopped, taken first by a scale-out (Origin
WarmPool, Destination AutoScalingGroup) with a shorter start, and listed by DescribeWarmPool."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.autoscaling import models as asg_models
from moto.autoscaling.responses import AutoScalingResponse

from devkit.localcloud.daemon import parse_warm_pool
from devkit.localcloud.emulation import AutoScalingEmulator
from devkit.localcloud.fleet import WorkerFleet
from devkit.localcloud.imds import instance_metadata
from devkit.localcloud.stack import LocalSettings, LocalStack, WarmPoolSettings, new_image
from queue_scaler.scaling.adapters.autoscaling import AutoScalingFleet
from queue_scaler.shared.events import LifecycleActionEvent
from tests.functional.moto_stack import REGION, create_group

GROUP = "ai"
LAUNCH_HOOK = "launch-readiness"


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def clock() -> dict[str, float]:
    return {"now": 1000.0}


@pytest.fixture
def emulator(
    aws: None, monkeypatch: pytest.MonkeyPatch, events: list[dict[str, Any]], clock: dict[str, float]
) -> AutoScalingEmulator:
    """The emulator installed for one test, a group of MaxSize 4 with a launch hook and a Stopped warm
    pool of MaxGroupPreparedCapacity 2; moto's own methods come back afterwards."""
    for owner, name in [
        (asg_models.FakeAutoScalingGroup, "set_desired_capacity"),
        (asg_models.FakeAutoScalingGroup, "update"),
        (asg_models.AutoScalingBackend, "set_instance_protection"),
        (asg_models.InstanceState, "launch_template"),
    ]:
        monkeypatch.setattr(owner, name, owner.__dict__[name])
    monkeypatch.setattr(AutoScalingResponse, "describe_warm_pool", AutoScalingResponse.describe_warm_pool)
    for name in (
        "complete_lifecycle_action",
        "record_lifecycle_action_heartbeat",
        "start_instance_refresh",
        "describe_instance_refreshes",
    ):
        monkeypatch.setattr(AutoScalingResponse, name, None, raising=False)
    emulator = AutoScalingEmulator(clock=lambda: clock["now"], on_event=events.append, region=REGION)
    emulator.install()
    create_group(GROUP, max_size=4)
    client = autoscaling()
    client.put_lifecycle_hook(
        LifecycleHookName=LAUNCH_HOOK,
        AutoScalingGroupName=GROUP,
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout=60,
        DefaultResult="ABANDON",
    )
    client.put_warm_pool(**WarmPoolSettings("Stopped", 0, 2).put_warm_pool_arguments(GROUP))
    return emulator


def autoscaling() -> Any:
    return boto3.client("autoscaling", region_name=REGION)


def warm_pool() -> list[dict[str, Any]]:
    return list(autoscaling().describe_warm_pool(AutoScalingGroupName=GROUP)["Instances"])


def group_instances() -> list[dict[str, Any]]:
    [group] = autoscaling().describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return list(group["Instances"])


def complete(event: dict[str, Any]) -> None:
    detail = event["detail"]
    autoscaling().complete_lifecycle_action(
        AutoScalingGroupName=GROUP,
        LifecycleHookName=detail["LifecycleHookName"],
        LifecycleActionToken=detail["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )


def warm_up(emulator: AutoScalingEmulator, events: list[dict[str, Any]]) -> list[str]:
    """Fill the pool, complete each warm pass as LifecycleFunction does, then let the fleet stop them."""
    emulator.fill_warm_pools()
    for event in list(events):
        complete(event)
    ids = [i["InstanceId"] for i in warm_pool()]
    for instance_id in ids:
        emulator.warmed(instance_id)
    return ids


def test_given_a_warm_pool_when_filled_then_its_instances_wait_outside_desired_through_the_launch_hook(
    emulator: AutoScalingEmulator, events: list[dict[str, Any]]
) -> None:
    emulator.fill_warm_pools()
    # AWS's size: MaxGroupPreparedCapacity 2 minus desired 0; none of them in the group.
    assert [i["LifecycleState"] for i in warm_pool()] == ["Warmed:Pending:Wait"] * 2
    assert group_instances() == []
    emulator.fill_warm_pools()  # already at its size: nothing more
    assert len(warm_pool()) == 2 and len(events) == 2
    for event in events:
        parsed = LifecycleActionEvent.model_validate(event)
        assert (event["detail"]["Origin"], event["detail"]["Destination"]) == ("EC2", "WarmPool")
        assert parsed.detail.into_warm_pool and not parsed.detail.from_warm_pool
        complete(event)
    assert [i["LifecycleState"] for i in warm_pool()] == ["Warmed:Pending:Proceed"] * 2
    for instance in warm_pool():
        emulator.warmed(instance["InstanceId"])
    assert [i["LifecycleState"] for i in warm_pool()] == ["Warmed:Stopped"] * 2
    reservations = boto3.client("ec2", region_name=REGION).describe_instances(
        InstanceIds=[i["InstanceId"] for i in warm_pool()]
    )["Reservations"]
    assert {i["State"]["Name"] for r in reservations for i in r["Instances"]} == {"stopped"}


def test_given_warmed_instances_when_the_group_scales_out_then_it_starts_them_first_and_launches_the_rest(
    emulator: AutoScalingEmulator, events: list[dict[str, Any]], clock: dict[str, float]
) -> None:
    warmed = warm_up(emulator, events)
    events.clear()
    clock["now"] += 30
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=3)
    instances = {i["InstanceId"]: i["LifecycleState"] for i in group_instances()}
    assert len(instances) == 3 and set(warmed) <= set(instances)
    assert set(instances.values()) == {"Pending:Wait"}
    passes = {e["detail"]["EC2InstanceId"]: (e["detail"]["Origin"], e["detail"]["Destination"]) for e in events}
    assert {passes[i] for i in warmed} == {("WarmPool", "AutoScalingGroup")}
    [cold] = set(instances) - set(warmed)
    assert passes[cold] == ("EC2", "AutoScalingGroup")
    assert all(
        LifecycleActionEvent.model_validate(e).detail.from_warm_pool == (e["detail"]["EC2InstanceId"] in warmed)
        for e in events
    )
    # Taken from the pool, each started now (a warm start), not at its launch 30 s ago.
    started = {instance_id: at for instance_id, _group, _state, at in emulator.snapshot()}
    assert all(started[i] == clock["now"] and emulator.warm_started(i) for i in warmed)
    assert not emulator.warm_started(cold)
    # Desired 3 of MaxGroupPreparedCapacity 2: the pool's size is 0 now, and the pool is empty.
    emulator.fill_warm_pools()
    assert warm_pool() == []


def test_given_a_scale_in_when_the_pool_has_room_again_then_it_is_refilled(
    emulator: AutoScalingEmulator, events: list[dict[str, Any]]
) -> None:
    warm_up(emulator, events)
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    emulator.fill_warm_pools()
    assert warm_pool() == []
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    emulator.fill_warm_pools()
    # Size 2 - 1: one instance launched into the pool again, through the hook.
    assert [i["LifecycleState"] for i in warm_pool()] == ["Warmed:Pending:Wait"]


def test_given_the_scalers_adapter_when_it_describes_the_group_then_it_counts_the_warmed_instances(
    emulator: AutoScalingEmulator, events: list[dict[str, Any]]
) -> None:
    warm_up(emulator, events)
    emulator.fill_warm_pools()
    state = AutoScalingFleet(autoscaling(), warm_pools=True).describe([GROUP])[GROUP]
    assert state.warm_pool is not None and state.warm_pool.state == "Stopped"
    assert state.warm_pool.ready() == 2 and state.warm_pool.warming() == 0
    assert state.instances == []


def test_given_a_warm_started_instance_when_the_fleet_boots_it_then_it_takes_the_shorter_warm_start(
    emulator: AutoScalingEmulator, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    settings = LocalSettings()
    # The simulator's ratio: 36 s warm start to the design's 120 s cold boot.
    assert settings.warm_start_seconds == pytest.approx(settings.boot_seconds * 36 / 120)
    warmed = warm_up(emulator, events)
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=3)
    [cold] = {i["InstanceId"] for i in group_instances()} - set(warmed)
    fleet = WorkerFleet(LocalStack(settings, {}, "", ""), emulator, "http://127.0.0.1:1", tmp_path, time.time)
    assert {fleet._boot_seconds(i) for i in warmed} == {settings.warm_start_seconds}
    assert fleet._boot_seconds(cold) == settings.boot_seconds > settings.warm_start_seconds


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ai=Stopped", ("ai", WarmPoolSettings("Stopped"))),
        ("ai=Running:1:3", ("ai", WarmPoolSettings("Running", 1, 3))),
    ],
)
def test_given_a_warm_pool_option_when_parsed_then_it_gives_the_templates_parameters(
    spec: str, expected: tuple[str, WarmPoolSettings]
) -> None:
    assert parse_warm_pool(spec) == expected


@pytest.mark.parametrize("spec", ["ai=Warm", "ai", "ai=Stopped:x", "=Stopped"])
def test_given_a_bad_warm_pool_option_when_parsed_then_it_is_refused_naming_the_format(spec: str) -> None:
    with pytest.raises(SystemExit, match="POOL=STATE"):
        parse_warm_pool(spec)


def test_given_the_local_metadata_service_when_a_worker_reads_its_target_state_then_it_gets_its_own(
    tmp_path: Path,
) -> None:
    """AWS_EC2_METADATA_SERVICE_ENDPOINT (the AWS SDKs' setting, which the worker honours) points each
    local worker at its own instance's metadata; botocore accepts the URL, so the worker's clients work."""
    states = {"i-warm": "Warmed:Stopped", "i-serving": "InService"}
    read = (
        "import boto3; boto3.client('autoscaling', region_name='us-east-1'); "
        "from queue_worker.warm import target_lifecycle_state; print(target_lifecycle_state())"
    )
    with instance_metadata(states.get) as url:
        answers = {
            instance_id: subprocess.run(
                [sys.executable, "-c", read],
                env={**os.environ, "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"{url}/{instance_id}"},
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
            for instance_id in [*states, "i-unknown"]
        }
    assert answers == {"i-warm": "Warmed:Stopped", "i-serving": "InService", "i-unknown": "None"}


def test_given_instances_in_and_out_of_the_pool_then_their_target_lifecycle_state_says_where_they_go(
    emulator: AutoScalingEmulator, events: list[dict[str, Any]]
) -> None:
    emulator.fill_warm_pools()
    warming = [i["InstanceId"] for i in warm_pool()]
    assert {emulator.target_lifecycle_state(i) for i in warming} == {"Warmed:Stopped"}
    for event in list(events):
        complete(event)
    for instance_id in warming:
        emulator.warmed(instance_id)
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    [started] = [i["InstanceId"] for i in group_instances()]
    assert started in warming and emulator.target_lifecycle_state(started) == "InService"
    assert emulator.target_lifecycle_state("i-none") is None


def test_given_instances_parked_in_the_pool_then_their_stopped_time_is_not_billed(
    emulator: AutoScalingEmulator, events: list[dict[str, Any]], clock: dict[str, float]
) -> None:
    emulator.fill_warm_pools()
    clock["now"] += 10  # both launched into the pool, 10 s of warm pass
    warm_up(emulator, events)
    clock["now"] += 100  # stopped in the pool: storage only
    assert emulator.instance_seconds(GROUP) == pytest.approx(2 * 10)
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    clock["now"] += 5  # one started: billed again
    assert emulator.instance_seconds(GROUP) == pytest.approx(2 * 10 + 5)


def test_given_no_max_prepared_capacity_then_the_pool_holds_max_size_minus_desired(
    emulator: AutoScalingEmulator,
) -> None:
    autoscaling().put_warm_pool(**WarmPoolSettings("Stopped", 1, -1).put_warm_pool_arguments(GROUP))
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    emulator.fill_warm_pools()
    assert len(warm_pool()) == 4 - 1
    autoscaling().set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=4)
    # Still warming, none was taken (cold launches instead); the pool's size is now its MinSize 1 (MaxSize
    # - desired is 0); the emulator does not trim a pool above its size (module docstring).
    emulator.fill_warm_pools()
    assert len(warm_pool()) == 3
    [group] = emulator.backend.describe_auto_scaling_groups([GROUP])
    assert emulator.warm_pool_size(group) == 1


def test_given_a_warm_pool_group_when_a_new_image_is_deployed_then_its_launch_template_version_moves(
    emulator: AutoScalingEmulator,
) -> None:
    version = new_image(autoscaling(), boto3.client("ec2", region_name=REGION), GROUP)
    [group] = autoscaling().describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    assert group["LaunchTemplate"]["Version"] == version != "1" and "MixedInstancesPolicy" not in group

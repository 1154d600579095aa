"""The lifecycle adapters against moto (and moto_lifecycle for what moto lacks): real calls, real parsing."""

from __future__ import annotations

import time

import boto3
import pytest
import time_machine

from queue_scaler.lifecycle.adapters.actions import DynamoActionStore, DynamoLeavingRecords
from queue_scaler.lifecycle.adapters.lifecycle_hooks import AutoScalingLifecycleHooks
from queue_scaler.lifecycle.adapters.ssm_commands import SsmRemoteCommands
from queue_scaler.lifecycle.domain.commands import Purpose, drain_command, health_command, sweep_command
from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS
from queue_scaler.lifecycle.domain.lifecycle import (
    ActionKind,
    ActionState,
    HookResult,
    LifecyclePolicy,
    Outcome,
    new_action,
)
from queue_scaler.lifecycle.ports import HookRef
from queue_scaler.scaling.domain.fleet import leaving_instances
from queue_scaler.shared.errors import ActionConflict
from tests.functional.moto_lifecycle import install
from tests.functional.moto_stack import REGION, create_actions_table, create_group, instances_of

pytestmark = pytest.mark.usefixtures("aws")

T0 = 1_800_000_000.0
POLICY = LifecyclePolicy(
    container="queue-worker",
    drain_seconds=60,
    drain_grace_seconds=30,
    launch_timeout_seconds=300,
    launch_hook_timeout_seconds=300,
    terminate_hook_timeout_seconds=160,
    reconcile_period_seconds=60,
    health_wait_seconds=60,
    command_retry_seconds=30,
)


@pytest.fixture
def store() -> DynamoActionStore:
    return DynamoActionStore(create_actions_table(), retention_seconds=3600)


def test_given_an_action_when_stored_and_read_then_every_field_survives(store: DynamoActionStore) -> None:
    action = new_action(ActionKind.TERMINATE, "i-1", "video", T0 + 0.25, POLICY, hook="terminate", token="tok")
    action = action.model_copy(update={"command_id": "c-1", "last_output": "exit=0\n", "command_sent_at": T0 + 1.5})
    created = store.create(action)
    assert created is not None and created.version == 1
    assert store.get("i-1", "terminate#tok") == created
    assert store.for_instance("i-1") == [created]


def test_given_an_existing_action_when_created_again_then_it_is_a_duplicate(store: DynamoActionStore) -> None:
    action = new_action(ActionKind.LAUNCH, "i-1", "video", T0, POLICY, hook="launch", token="tok")
    assert store.create(action) is not None
    assert store.create(action) is None


def test_given_a_stale_version_when_saved_then_it_conflicts(store: DynamoActionStore) -> None:
    created = store.create(new_action(ActionKind.SPOT, "i-1", "video", T0, POLICY))
    assert created is not None
    saved = store.save(created.model_copy(update={"command_id": "c-1"}))
    assert saved.version == 2
    with pytest.raises(ActionConflict):
        store.save(created.model_copy(update={"command_id": "c-2"}))
    assert store.get("i-1", "spot") == saved


def test_given_pending_and_completed_actions_when_listing_pending_then_only_pending(store: DynamoActionStore) -> None:
    pending = store.create(new_action(ActionKind.TERMINATE, "i-1", "video", T0, POLICY, hook="h", token="a"))
    done = store.create(new_action(ActionKind.TERMINATE, "i-2", "video", T0, POLICY, hook="h", token="b"))
    assert pending is not None and done is not None
    store.save(
        done.model_copy(update={"state": ActionState.COMPLETED, "outcome": Outcome.SUCCEEDED, "completed_at": T0})
    )
    assert [a.instance_id for a in store.pending().actions] == ["i-1"]


def test_given_a_malformed_item_when_listing_pending_then_it_is_reported_and_the_others_are_read(
    store: DynamoActionStore,
) -> None:
    store.create(new_action(ActionKind.TERMINATE, "i-1", "video", T0, POLICY, hook="h", token="a"))
    # Hand-edited, or written by an older schema: no deadline, a kind nobody knows.
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName="lifecycle-actions",
        Item={
            "instance_id": {"S": "i-bad"},
            "action": {"S": "terminate#x"},
            "state": {"S": "pending"},
            "kind": {"S": "evict"},
        },
    )
    pending = store.pending()
    assert [a.instance_id for a in pending.actions] == ["i-1"]
    [problem] = pending.unreadable
    assert problem.startswith("i-bad/terminate#x: ValidationError")


def test_given_leaving_and_staying_instances_when_asked_then_only_unexpired_leavers(store: DynamoActionStore) -> None:
    store.create(new_action(ActionKind.REBALANCE, "i-rebalance", "video", T0, POLICY))
    store.create(new_action(ActionKind.SPOT, "i-spot", "video", T0, POLICY))
    store.create(new_action(ActionKind.LAUNCH, "i-new", "video", T0, POLICY, hook="h", token="t"))
    store.create(new_action(ActionKind.REBALANCE, "i-long-gone", "video", T0 - 7200, POLICY))
    # What the scaler reads of them (by key) and counts as leaving at T0 (the domain's rule).
    instances = ["i-rebalance", "i-spot", "i-new", "i-long-gone", "i-unknown"]
    records = DynamoLeavingRecords("lifecycle-actions").records(instances)
    assert leaving_instances(records, T0) == frozenset({"i-rebalance", "i-spot"})


def test_given_pending_actions_when_completed_and_heartbeated_then_auto_scaling_records_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    actions, _ = install(monkeypatch)
    create_group("video", desired=1)
    [instance] = instances_of("video")
    token = actions.start("video", "terminate", instance)
    hooks = AutoScalingLifecycleHooks()
    ref = HookRef(group="video", hook="terminate", instance_id=instance, token=token)
    assert hooks.heartbeat(ref) is True
    assert hooks.complete(ref, HookResult.CONTINUE) is True
    assert (actions.actions[token].heartbeats, actions.actions[token].result) == (1, "CONTINUE")
    # The same token again: Auto Scaling answers "No active Lifecycle Action found".
    assert hooks.complete(ref, HookResult.CONTINUE) is False
    assert hooks.heartbeat(ref) is False


def test_given_instances_in_and_out_of_groups_when_looked_up_then_the_group_or_none(aws: None) -> None:
    create_group("video", desired=1)
    [instance] = instances_of("video")
    hooks = AutoScalingLifecycleHooks()
    assert hooks.group_of(instance) == "video"
    assert hooks.group_of("i-0fffffffffffffff0") is None


def test_given_a_drain_when_sent_then_run_shell_script_carries_it_and_its_status_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, agent = install(monkeypatch)
    commands = SsmRemoteCommands()
    command_id = commands.run("i-1", drain_command("queue-worker", 60))
    listed = boto3.client("ssm", region_name=REGION).list_commands(CommandId=command_id)["Commands"][0]
    assert listed["DocumentName"] == "AWS-RunShellScript"
    assert listed["Parameters"]["executionTimeout"] == [str(60 + RELEASE_MARGIN_SECONDS + 60)]
    assert listed["Comment"] == "queue-scaler drain queue-worker 60"
    assert commands.observe(command_id, "i-1").running
    [sent] = agent.sent
    sent.finish("Failed", "exit=137")
    seen = commands.observe(command_id, "i-1")
    assert (seen.status, seen.output, seen.running) == ("Failed", "exit=137", False)


def test_given_an_invocation_ssm_does_not_know_yet_when_observed_then_it_is_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch)
    commands = SsmRemoteCommands()
    command_id = commands.run("i-1", drain_command("queue-worker", 60))
    assert commands.observe(command_id, "i-2").status == "Pending"


def test_given_workers_in_service_when_swept_and_one_is_marked_unhealthy_then_auto_scaling_records_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, agent = install(monkeypatch)
    create_group("video", desired=3)
    create_group("other", desired=1)
    hooks, commands = AutoScalingLifecycleHooks(), SsmRemoteCommands()
    workers = hooks.in_service(frozenset({"video"}))
    assert sorted(workers) == sorted(instances_of("video"))
    [command_id] = commands.sweep(workers, sweep_command("queue-worker"))
    assert sorted(s.instance_id for s in agent.sent) == sorted(workers)
    assert commands.observe(command_id, workers[0]).comment == "queue-scaler sweep queue-worker 0"
    hooks.mark_unhealthy(workers[0])
    [state] = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_instances(InstanceIds=[workers[0]])[
        "AutoScalingInstances"
    ]
    assert state["HealthStatus"].upper() == "UNHEALTHY"
    assert workers[0] not in hooks.in_service(frozenset({"video"}))


def test_given_drains_sent_to_an_instance_when_found_then_the_newest_drain_of_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch)
    commands = SsmRemoteCommands()
    since = time.time() - 60
    assert commands.find("i-1", Purpose.DRAIN, since) is None
    commands.run("i-1", health_command("queue-worker", 30))
    drain = commands.run("i-1", drain_command("queue-worker", 60))
    commands.run("i-2", drain_command("queue-worker", 60))
    assert commands.find("i-1", Purpose.DRAIN, since) == drain


def test_given_a_drain_of_an_earlier_warm_pool_trip_when_found_since_this_wait_then_it_is_not_adopted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch)
    commands = SsmRemoteCommands()
    earlier = commands.run("i-1", drain_command("queue-worker", 60))
    with time_machine.travel(time.time() + 900, tick=False):
        this_wait = time.time() - 60  # the instance came back to the pool and scales in again
        assert commands.find("i-1", Purpose.DRAIN, this_wait) is None
        assert commands.find("i-1", Purpose.DRAIN, this_wait - 900) == earlier
        again = commands.run("i-1", drain_command("queue-worker", 60))
        assert commands.find("i-1", Purpose.DRAIN, this_wait) == again


def test_given_other_ec2_instances_when_a_drain_is_found_then_only_a_command_sent_to_that_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch)
    create_group("video", desired=2)
    first, second = instances_of("video")
    commands = SsmRemoteCommands()
    drain = commands.run(first, drain_command("queue-worker", 60))
    since = time.time() - 60
    assert commands.find(first, Purpose.DRAIN, since) == drain
    assert commands.find(second, Purpose.DRAIN, since) is None  # moto alone would list every EC2 instance's

"""LifecycleFunction's handler end to end under moto, with moto_lifecycle supplying what moto lacks.

Time moves with time_machine: the handler reads the clock as Lambda does, and the reconciler's
deadlines are minutes away. Metrics are read from the EMF documents the handler emits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import time_machine
from botocore.awsrequest import AWSResponse

from queue_scaler.lifecycle.domain.deadlines import RELEASE_MARGIN_SECONDS
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.errors import Throttled
from queue_scaler.shared.observability import EmfMetrics
from tests.functional.handlers import ROOT, FakeContext, event, load_handler
from tests.functional.moto_lifecycle import LifecycleActions, SsmAgent, install
from tests.functional.moto_stack import REGION, create_actions_table, create_group, instances_of

GROUP = "queue-scaler-dev-video"
TABLE = "lifecycle-actions"


@dataclass
class Stack:
    handler: ModuleType
    actions: LifecycleActions
    agent: SsmAgent
    instances: list[str]
    emitted: list[dict[str, Any]]
    caplog: pytest.LogCaptureFixture

    def invoke(self, sample: str, at: float | None = None, **detail: Any) -> dict[str, Any]:
        """Deliver one event; `at` is when it happened (now unless it arrives late)."""
        raw = event("lifecycle", sample)
        if detail:
            raw["detail"] = raw["detail"] | detail
        if "time" in raw:  # sent now: the action's deadline is dated from the event's time
            raw["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        result: dict[str, Any] = self.handler.lambda_handler(raw, FakeContext())
        return result

    def hook(self, sample: str, instance_id: str, hook: str) -> tuple[str, dict[str, Any]]:
        """Auto Scaling puts the instance in a wait state and sends the event (moto's hooks never fire)."""
        token = self.actions.start(GROUP, hook, instance_id)
        detail = {"LifecycleActionToken": token, "AutoScalingGroupName": GROUP, "EC2InstanceId": instance_id}
        return token, self.invoke(sample, **detail, LifecycleHookName=hook)

    def status(self, command_id: str, instance_id: str, status: str) -> dict[str, Any]:
        return self.invoke(
            "command-invocation-status.json", **{"command-id": command_id, "instance-id": instance_id, "status": status}
        )

    def reconcile(self) -> dict[str, Any]:
        return self.invoke("reconcile-scheduled.json")

    def stored(self, instance_id: str) -> list[dict[str, Any]]:
        items = boto3.client("dynamodb", region_name=REGION).query(
            TableName=TABLE,
            KeyConditionExpression="instance_id = :id",
            ExpressionAttributeValues={":id": {"S": instance_id}},
        )["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]

    def metrics(self) -> list[str]:
        """Names of the metrics emitted so far with a non-zero value."""
        return [name for document in self.emitted for name, value in document.items() if value]

    def failure_log(self) -> logging.LogRecord:
        [record] = [r for r in self.caplog.records if r.getMessage() == "lifecycle action completed unsuccessfully"]
        return record


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Stack:
    actions, agent = install(monkeypatch)
    emitted: list[dict[str, Any]] = []
    emit = EmfMetrics._emit

    def recording_emit(self: EmfMetrics, values: Mapping[str, float], *args: Any, **kwargs: Any) -> None:
        emitted.append(dict(values))
        emit(self, values, *args, **kwargs)

    monkeypatch.setattr(EmfMetrics, "_emit", recording_emit)
    create_actions_table(TABLE)
    create_group(GROUP, desired=2)
    for key, value in {
        "ACTIONS_TABLE": TABLE,
        "GROUP_NAMES": f"{GROUP},queue-scaler-dev-ai",
        "ENVIRONMENT": "test",
        "DRAIN_SECONDS": "60",
        "TERMINATE_HOOK_TIMEOUT_SECONDS": "160",
        "LAUNCH_HOOK_TIMEOUT_SECONDS": "300",
        "LAUNCH_TIMEOUT_SECONDS": "300",
        "DRAIN_FAILED_RESULT": "ABANDON",
        "POWERTOOLS_SERVICE_NAME": "lifecycle",
        "POWERTOOLS_METRICS_NAMESPACE": "QueueScaler",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    return Stack(load_handler("lifecycle"), actions, agent, instances_of(GROUP), emitted, caplog)


def later(seconds: float) -> time_machine.travel:
    return time_machine.travel(time.time() + seconds, tick=False)


def test_given_a_terminate_hook_when_the_drain_succeeds_then_continue_and_no_job_is_cut_short(stack: Stack) -> None:
    instance = stack.instances[0]
    token, result = stack.hook("terminate.json", instance, "terminate")
    assert result["event"] == "EC2 Instance-terminate Lifecycle Action"
    [drain] = stack.agent.of("drain")
    assert drain.instance_id == instance
    assert f"docker stop --time {60 + RELEASE_MARGIN_SECONDS}" in "\n".join(drain.script)
    assert stack.actions.actions[token].result is None  # the hook waits while the worker drains
    [stored] = stack.stored(instance)
    assert (stored["state"], stored["command_id"]) == ("pending", drain.command_id)

    drain.finish("Success", "exit=0")
    [report] = stack.status(drain.command_id, instance, "Success")["actions"]

    assert report["outcome"] == "succeeded"
    assert stack.actions.actions[token].result == "CONTINUE"
    [stored] = stack.stored(instance)
    assert (stored["state"], stored["result"]) == ("completed", "CONTINUE")
    assert {"LifecycleActionsCompleted", "DrainSeconds"} <= set(stack.metrics())


def test_given_a_duplicate_terminate_event_when_handled_then_one_drain_and_one_completion(stack: Stack) -> None:
    instance = stack.instances[0]
    token, _ = stack.hook("terminate.json", instance, "terminate")
    detail = {"LifecycleActionToken": token, "AutoScalingGroupName": GROUP, "EC2InstanceId": instance}
    [again] = stack.invoke("terminate.json", **detail, LifecycleHookName="terminate")["actions"]
    assert again["step"] == "wait"
    [drain] = stack.agent.of("drain")
    drain.finish("Success")
    stack.status(drain.command_id, instance, "Success")
    stack.status(drain.command_id, instance, "Success")  # status events are delivered at least once too
    assert stack.actions.actions[token].result == "CONTINUE"
    assert len(stack.agent.of("drain")) == 1
    assert "LifecycleDuplicateEvents" in stack.metrics()


def test_given_a_stale_token_when_completing_then_it_counts_as_done_and_nothing_fails(stack: Stack) -> None:
    instance = stack.instances[0]
    stack.agent.reply(instance, "health", "Success", "health=healthy")
    # An event replayed after Auto Scaling gave up on its token: the token is unknown there.
    stale = {
        "LifecycleActionToken": "00000000-0000-4000-8000-00000000dead",
        "AutoScalingGroupName": GROUP,
        "EC2InstanceId": instance,
    }
    stack.invoke("launch.json", **stale, LifecycleHookName="launch")
    [check] = stack.agent.of("health")
    [report] = stack.status(check.command_id, instance, "Success")["actions"]
    assert report["outcome"] == "already_done" and "error" not in report
    [stored] = stack.stored(instance)
    assert stored["state"] == "completed"
    metrics = stack.metrics()
    assert "LifecycleActionsAlreadyDone" in metrics and "LifecycleErrors" not in metrics


def test_given_a_drain_that_fails_when_its_status_arrives_then_the_configured_result_with_the_output_logged(
    stack: Stack,
) -> None:
    instance = stack.instances[1]
    stack.agent.reply(instance, "drain", "Failed", "exit=137\njob j-42 interrupted")
    token, _ = stack.hook("terminate.json", instance, "terminate")
    [drain] = stack.agent.of("drain")
    [report] = stack.status(drain.command_id, instance, "Failed")["actions"]
    assert report["outcome"] == "failed"
    assert stack.actions.actions[token].result == "ABANDON"
    line = stack.failure_log()
    assert line.output == ["exit=137", "job j-42 interrupted"] and line.levelname == "ERROR"  # type: ignore[attr-defined]
    assert "LifecycleActionsFailed" in stack.metrics()


def test_given_a_launch_when_the_container_is_healthy_then_continue(stack: Stack) -> None:
    instance = stack.instances[0]
    stack.agent.reply(instance, "health", "Success", "health=healthy")
    token, _ = stack.hook("launch.json", instance, "launch")
    [check] = stack.agent.of("health")
    stack.status(check.command_id, instance, "Success")
    assert stack.actions.actions[token].result == "CONTINUE"


def test_given_a_launch_never_healthy_when_its_deadline_passes_then_abandon_with_the_last_log_lines(
    stack: Stack,
) -> None:
    instance = stack.instances[0]
    stack.agent.reply(instance, "health", "Success", "health=unhealthy\nbotocore: QueueDoesNotExist")
    token, _ = stack.hook("launch.json", instance, "launch")
    with later(61):  # the first check answered "unhealthy"; the reconciler checks again
        stack.reconcile()
    assert len(stack.agent.of("health")) == 2
    with later(301):
        [report] = stack.reconcile()["actions"]
    assert report["outcome"] == "failed"
    assert stack.actions.actions[token].result == "ABANDON"
    assert stack.actions.actions[token].heartbeats >= 1  # kept alive while it was being checked
    line = stack.failure_log()
    assert line.output == ["health=unhealthy", "botocore: QueueDoesNotExist"]  # type: ignore[attr-defined]
    assert "last health: unhealthy" in line.reason  # type: ignore[attr-defined]


def test_given_a_drain_that_never_answers_when_the_reconciler_runs_past_its_deadline_then_it_is_forced(
    stack: Stack,
) -> None:
    instance = stack.instances[0]
    token, _ = stack.hook("terminate.json", instance, "terminate")
    with later(60):
        [waiting] = stack.reconcile()["actions"]
    assert waiting["step"] == "wait"
    assert stack.actions.actions[token].heartbeats == 1  # hook timeout 160 s: beaten every run
    with later(60 + RELEASE_MARGIN_SECONDS + 31):  # past the SIGKILL and the grace
        [report] = stack.reconcile()["actions"]
    assert report["outcome"] == "forced"
    assert stack.actions.actions[token].result == "ABANDON"
    assert "LifecycleActionsForced" in stack.metrics()
    with later(150):
        assert stack.reconcile()["actions"] == []  # nothing left pending


def test_given_a_spot_interruption_when_handled_then_the_drain_starts_at_once(stack: Stack) -> None:
    instance = stack.instances[0]
    [report] = stack.invoke("spot-interruption.json", **{"instance-id": instance})["actions"]
    assert report["step"] == "run_command"
    [drain] = stack.agent.of("spot")
    # The notice's end reaches the worker first; then SIGTERM with the seconds left.
    assert "ends=" in "\n".join(drain.script) and 'docker stop --time "$left"' in "\n".join(drain.script)
    drain.finish("Success")
    [done] = stack.status(drain.command_id, instance, "Success")["actions"]
    assert done["outcome"] == "succeeded"
    assert "SpotInterruptions" in stack.metrics()


def test_given_a_spot_interruption_of_an_instance_outside_the_stack_when_handled_then_it_is_ignored(
    stack: Stack,
) -> None:
    [report] = stack.invoke("spot-interruption.json", **{"instance-id": "i-0fffffffffffffff0"})["actions"]
    assert report["step"] == "ignored" and stack.agent.sent == []


def test_given_a_rebalance_recommendation_when_handled_then_the_instance_is_recorded_as_leaving(stack: Stack) -> None:
    from queue_scaler.lifecycle.adapters.actions import DynamoLeavingRecords
    from queue_scaler.scaling.domain.fleet import leaving_instances

    instance = stack.instances[1]
    [report] = stack.invoke("rebalance-recommendation.json", **{"instance-id": instance})["actions"]
    assert report["outcome"] == "noted" and stack.agent.sent == []
    assert leaving_instances(DynamoLeavingRecords(TABLE).records(stack.instances), time.time()) == {instance}
    assert "RebalanceRecommendations" in stack.metrics()


@pytest.mark.parametrize("sample", sorted(p.name for p in (ROOT / "events" / "lifecycle").glob("*.json")))
def test_given_each_sample_event_unchanged_when_invoked_then_the_handler_returns(stack: Stack, sample: str) -> None:
    # The files as they are: what `queue-scaler invoke LifecycleFunction` and `sam local invoke -e` send.
    result = stack.handler.lambda_handler(event("lifecycle", sample), FakeContext())
    if "Records" in event("lifecycle", sample):  # an SQS batch from LifecycleEventsQueue
        assert set(result) == {"batchItemFailures"}
        return
    assert set(result) == {"event", "actions"}
    assert all("error" not in report for report in result["actions"])


def test_given_a_batch_from_the_events_queue_when_handled_then_only_the_unreadable_record_comes_back(
    stack: Stack,
) -> None:
    raw = event("lifecycle", "sqs-batch.json")
    instance = stack.instances[0]
    token = stack.actions.start(GROUP, "terminate", instance)
    terminate = json.loads(raw["Records"][0]["body"])
    terminate["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    terminate["detail"] |= {"LifecycleActionToken": token, "AutoScalingGroupName": GROUP, "EC2InstanceId": instance}
    raw["Records"][0]["body"] = json.dumps(terminate)
    result = stack.handler.lambda_handler(raw, FakeContext())
    # The terminate event is handled (its drain sent) and deleted; the unknown one is retried, then
    # dead-lettered by the queue's redrive policy.
    assert result == {"batchItemFailures": [{"itemIdentifier": raw["Records"][1]["messageId"]}]}
    assert [c.instance_id for c in stack.agent.of("drain")] == [instance]


def test_given_the_sam_generated_scheduled_event_when_invoked_then_the_reconciler_runs(stack: Stack) -> None:
    raw = json.loads(Path(ROOT, "events", "scaler", "sam-generated-scheduled.json").read_text())
    assert stack.handler.lambda_handler(raw, FakeContext()) == {"event": "Scheduled Event", "actions": []}


def test_given_an_unexpected_event_when_invoked_then_it_is_rejected(stack: Stack) -> None:
    with pytest.raises(Exception, match="detail-type"):
        stack.handler.lambda_handler({"source": "aws.ec2", "detail-type": "EC2 Instance State-change"}, FakeContext())


# --- Timelines: the actions table throttled, the event late -------------------------------------------
#
# Whatever the table does, a terminating instance is drained before its hook completes, and the hook
# never runs out (HeartbeatTimeout 160 s, the template's for a 60 s drain): moto_lifecycle expires an
# action whose heartbeats stop, as Auto Scaling does. The reconciler runs every minute and the worker
# drains for its whole window; the instance waits in Terminating:Wait, where the reconciler finds it.

HOOK_TIMEOUT = 160.0
DRAIN_RUNS = 60.0


@dataclass
class ThrottledWrites:
    """A botocore event hook on the adapters' DynamoDB client: a PutItem for which `when(request body,
    writes refused so far)` holds is answered ProvisionedThroughputExceededException, after botocore's
    own retries (before-call replaces the whole call, retries included)."""

    when: Callable[[dict[str, Any], int], bool]
    refused: int = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self.when(json.loads(params["body"] or b"{}"), self.refused):
            return None
        self.refused += 1
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeded"}
        return AWSResponse("https://dynamodb.us-east-1.amazonaws.com", 400, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }


def throttle(when: Callable[[dict[str, Any], int], bool]) -> ThrottledWrites:
    fault = ThrottledWrites(when)
    clients.dynamodb().meta.events.register("before-call.dynamodb.PutItem", fault)
    return fault


def recorded(body: dict[str, Any]) -> bool:
    """The write that first records an action (the save of a claim or a step is conditional on its version)."""
    return str(body.get("ConditionExpression", "")).startswith("attribute_not_exists")


def run_timeline(
    stack: Stack,
    clock: time_machine.Coordinates,
    t0: float,
    token: str,
    *,
    reconcile_at: range,
    deliveries: dict[float, Callable[[], object]],
    until: float = 600,
) -> None:
    """Move time in 5 s steps: deliver the timeline's events, finish each drain DRAIN_RUNS after it was
    sent (and deliver its status event), run the reconciler on its schedule; stop once the hook ended."""
    for t in range(0, int(until) + 1, 5):
        clock.move_to(t0 + t)
        for drain in stack.agent.of("drain"):
            if drain.running and time.time() >= drain.sent_at + DRAIN_RUNS:
                drain.finish("Success", "exit=0")
                stack.status(drain.command_id, drain.instance_id, "Success")
        if t in deliveries:
            with contextlib.suppress(Throttled):  # a failed record comes back after the queue's visibility
                deliveries[t]()
        if t in reconcile_at:
            stack.reconcile()
        stack.actions.actions[token].expire(time.time())
        if stack.actions.actions[token].result is not None:
            return


def assert_drained_before_completion(stack: Stack, token: str, instance: str) -> None:
    action = stack.actions.actions[token]
    drains = [d for d in stack.agent.of("drain") if d.instance_id == instance]
    assert drains, f"hook ended {action.result} with no drain ever sent"
    assert len(drains) == 1, f"{len(drains)} drains sent: every path must converge on one"
    assert action.result == "CONTINUE", f"hook ended {action.result}, heartbeats at {action.beats}"
    assert action.completed_at is not None and action.completed_at >= drains[0].sent_at + DRAIN_RUNS


def hold_at_terminate_hook(stack: Stack, instance: str, t0: float) -> str:
    """The group's terminate hook holds `instance` in Terminating:Wait from t0; the action's token."""
    boto3.client("autoscaling", region_name=REGION).put_lifecycle_hook(
        AutoScalingGroupName=GROUP,
        LifecycleHookName="terminate",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=int(HOOK_TIMEOUT),
        DefaultResult="CONTINUE",
    )
    with time_machine.travel(t0, tick=False):
        return stack.actions.start(GROUP, "terminate", instance, timeout=HOOK_TIMEOUT, hold="Terminating:Wait")


@pytest.fixture
def terminating(stack: Stack) -> tuple[str, str, float]:
    """An instance held in Terminating:Wait at the group's terminate hook from t0; (instance, token, t0)."""
    instance = stack.instances[0]
    t0 = float(int(time.time()))
    return instance, hold_at_terminate_hook(stack, instance, t0), t0


def deliver(stack: Stack, instance: str, token: str, at: float | None = None) -> Callable[[], object]:
    detail = {"LifecycleActionToken": token, "AutoScalingGroupName": GROUP, "EC2InstanceId": instance}
    return lambda: stack.invoke("terminate.json", at, **detail, LifecycleHookName="terminate")


def test_given_the_first_five_writes_throttled_when_an_instance_terminates_then_it_drains_before_its_hook_completes(
    stack: Stack, terminating: tuple[str, str, float]
) -> None:
    instance, token, t0 = terminating
    fault = throttle(lambda body, refused: refused < 5)
    with time_machine.travel(t0, tick=False) as clock:
        # The event at once, again after the intake queue's visibility timeout; the reconciler every minute.
        events = {0: deliver(stack, instance, token), 360: deliver(stack, instance, token)}
        run_timeline(stack, clock, t0, token, reconcile_at=range(60, 601, 60), deliveries=events)
    assert fault.refused >= 1
    assert_drained_before_completion(stack, token, instance)
    assert "DrainsUnrecorded" in stack.metrics()


@pytest.mark.parametrize("phase", ["record", "step"])
def test_given_120_s_of_throttled_writes_when_an_instance_terminates_then_it_drains_before_its_hook_completes(
    stack: Stack, terminating: tuple[str, str, float], phase: str
) -> None:
    instance, token, t0 = terminating
    # Every write of one phase refused for two minutes: the action's first record, or its later steps.
    fault = throttle(lambda body, _: time.time() < t0 + 120 and recorded(body) == (phase == "record"))
    with time_machine.travel(t0, tick=False) as clock:
        events = {0: deliver(stack, instance, token), 360: deliver(stack, instance, token)}
        run_timeline(stack, clock, t0, token, reconcile_at=range(60, 601, 60), deliveries=events)
    assert fault.refused >= 1
    assert_drained_before_completion(stack, token, instance)


@pytest.mark.parametrize("reconciler_first", [False, True], ids=["event-first", "reconciler-first"])
def test_given_an_event_95_s_late_when_it_arrives_then_the_instance_drains_before_its_hook_completes(
    stack: Stack, terminating: tuple[str, str, float], reconciler_first: bool
) -> None:
    instance, token, t0 = terminating
    with time_machine.travel(t0, tick=False) as clock:
        # The reconciler's minute falls after the event, or before it (it then drains the instance first).
        runs = range(30, 601, 60) if reconciler_first else range(100, 601, 60)
        run_timeline(stack, clock, t0, token, reconcile_at=runs, deliveries={95: deliver(stack, instance, token, t0)})
    assert_drained_before_completion(stack, token, instance)

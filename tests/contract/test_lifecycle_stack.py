"""LifecycleFunction as each samconfig environment deploys it: its settings, rules, permissions, table, alarms."""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

import pytest
from pydantic import Field

from devkit import lifecycle_wiring
from devkit.stackmodel import ROOT_TEMPLATE, Resource, Stack, root_stack
from queue_scaler.lifecycle.domain.lifecycle import ActionKind, hook_maximum
from queue_scaler.settings import LifecycleSettings
from queue_scaler.shared.events import LIFECYCLE_EVENT_KINDS, LifecycleEvent, LifecycleEventKind
from queue_scaler.shared.metric_names import Metric

from . import invariants as inv

FUNCTION = "LifecycleFunction"
# What EventBridge sends through LifecycleEventsQueue: the table's kinds (queue_scaler.shared.events).
LIFECYCLE_SOURCES = {s for kind in LIFECYCLE_EVENT_KINDS if kind.via_queue for s in kind.sources}
QUEUED_EVENTS = {d for kind in LIFECYCLE_EVENT_KINDS if kind.via_queue for d in kind.detail_types}


def function(deployed: Stack) -> Resource:
    (found,) = [f for f in inv.of_type(deployed, "AWS::Lambda::Function") if f.logical_id == FUNCTION]
    return found


def groups(deployed: Stack) -> set[str]:
    return {g.properties["AutoScalingGroupName"] for g in inv.of_type(deployed, "AWS::AutoScaling::AutoScalingGroup")}


def hook_timeouts(deployed: Stack, transition: str) -> set[int]:
    return {
        int(h["HeartbeatTimeout"])
        for g in inv.of_type(deployed, "AWS::AutoScaling::AutoScalingGroup")
        for h in g.properties["LifecycleHookSpecificationList"]
        if h["LifecycleTransition"] == transition
    }


def rules(deployed: Stack) -> list[dict[str, Any]]:
    return [r.properties for r in inv.of_type(deployed, "AWS::Events::Rule") if r.logical_id.startswith(FUNCTION)]


def statements(deployed: Stack) -> list[dict[str, Any]]:
    return [s for where, s in inv.policy_statements(deployed) if f"/{FUNCTION}Role" in where]


def test_given_an_environment_then_the_lifecycle_settings_match_the_hooks_they_answer(
    deployed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in function(deployed).properties["Environment"]["Variables"].items():
        monkeypatch.setenv(name, str(value))
    settings = LifecycleSettings()  # type: ignore[call-arg]  # read from the environment
    assert settings.actions_table == deployed.ref("LifecycleActionsTable")
    assert settings.group_names == groups(deployed)
    policy = settings.policy()
    for group in inv.of_type(deployed, "AWS::AutoScaling::AutoScalingGroup"):
        name = group.properties["AutoScalingGroupName"]
        # Each pool drains for its own DrainSeconds, the one its workers get as DRAIN_SECONDS...
        assert policy.drain_seconds_for(name) == int(group.stack.ancestor_parameter("DrainSeconds"))
        # ...and heartbeats are planned on a timeout no longer than its hook's real one (which they
        # then keep open), above the reconciler's period.
        [terminate] = [
            h
            for h in group.properties["LifecycleHookSpecificationList"]
            if h["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        ]
        planned = policy.hook_timeout(ActionKind.TERMINATE, name)
        assert settings.reconcile_period_seconds < planned <= int(terminate["HeartbeatTimeout"])
    assert hook_timeouts(deployed, "autoscaling:EC2_INSTANCE_LAUNCHING") == {settings.launch_hook_timeout_seconds}
    assert settings.environment == deployed.parameters["EnvironmentName"]


def test_given_an_environment_then_every_event_type_and_the_reconciler_reach_the_function(deployed: Stack) -> None:
    queue = deployed.get_att("LifecycleEventsQueue", "Arn")
    dead_letters = deployed.get_att("LifecycleEventsDeadLetters", "Arn")
    events = [
        r.properties
        for r in inv.of_type(deployed, "AWS::Events::Rule")
        if "EventPattern" in r.properties
        and r.properties["EventPattern"]["source"][0] in LIFECYCLE_SOURCES
        # Launch failures go to a log group for the launch-failures alarm, not to the function.
        and r.logical_id != "LaunchFailuresRule"
    ]
    # Every event rule delivers to the durable queue, retries, and keeps what it cannot deliver.
    for rule in events:
        [target] = rule["Targets"]
        assert target["Arn"] == queue
        assert target["DeadLetterConfig"]["Arn"] == dead_letters
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    patterns = [r["EventPattern"] for r in events]
    detail_types = {t for p in patterns for t in p["detail-type"]}
    assert detail_types == QUEUED_EVENTS
    [hooks] = [p for p in patterns if p["source"] == ["aws.autoscaling"]]
    assert set(hooks["detail"]["AutoScalingGroupName"]) == groups(deployed)
    assert [r["ScheduleExpression"] for r in rules(deployed) if "ScheduleExpression" in r] == ["rate(1 minute)"]
    # The function reads the queue with partial batch responses; the queue redrives to its DLQ.
    [mapping] = [
        m.properties
        for m in inv.of_type(deployed, "AWS::Lambda::EventSourceMapping")
        if m.properties["EventSourceArn"] == queue
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (source,) = [q for q in inv.of_type(deployed, "AWS::SQS::Queue") if q.logical_id == "LifecycleEventsQueue"]
    assert source.properties["RedrivePolicy"]["deadLetterTargetArn"] == dead_letters


def test_given_an_environment_then_each_lifecycle_event_kind_has_its_rule_queue_source_and_alarm(
    deployed: Stack,
) -> None:
    """Each kind of queue_scaler.shared.events.LIFECYCLE_EVENT_KINDS has its rule with the kind's pattern, the
    queue policy lets exactly those rules send, and the rule-failures alarm sums each rule's failures."""
    gaps = lifecycle_wiring.gaps(deployed)
    assert not gaps, "template.yaml lacks what queue_scaler.shared.events.LIFECYCLE_EVENT_KINDS asks:\n" + "\n".join(
        gaps
    )


class ToyEvent(LifecycleEvent):
    source: Literal["example.toy"]
    detail_type: Literal["Toy Happened"] = Field(alias="detail-type")


def test_given_a_kind_the_template_lacks_then_the_check_names_the_rule_to_add(deployed: Stack) -> None:
    toy = LifecycleEventKind("toy", ToyEvent, "on_toy", "ToyRule")
    assert lifecycle_wiring.gaps(deployed, (*LIFECYCLE_EVENT_KINDS, toy)) == [
        "add an AWS::Events::Rule ToyRule to template.yaml: EventPattern source ['example.toy'], "
        "detail-type ['Toy Happened'], target LifecycleEventsQueue"
    ]


def test_given_a_rule_without_its_queue_source_and_alarm_term_then_the_check_names_both(
    templates: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    broken = copy.deepcopy(templates)
    resources = broken[ROOT_TEMPLATE]["Resources"]
    [statement] = resources[lifecycle_wiring.QUEUE_POLICY]["Properties"]["PolicyDocument"]["Statement"]
    statement["Condition"]["ArnEquals"]["aws:SourceArn"].remove({"Fn::GetAtt": ["CommandResultsRule", "Arn"]})
    metrics = resources["RuleDeliveryFailuresAlarm"]["Properties"]["Metrics"]
    [summed] = [m for m in metrics if "Expression" in m]
    rule = [{"Name": "RuleName", "Value": {"Ref": "CommandResultsRule"}}]
    [term] = [m["Id"] for m in metrics if m.get("MetricStat", {}).get("Metric", {}).get("Dimensions") == rule]
    summed["Expression"] = summed["Expression"].replace(f" + FILL({term}, 0)", "")
    deploy = inv.environments(samconfig)["dev"]
    stack = root_stack(broken, inv.parameter_overrides(deploy), deploy["stack_name"], deploy["region"])
    assert lifecycle_wiring.gaps(stack) == [
        "add !GetAtt CommandResultsRule.Arn to LifecycleEventsQueuePolicy's aws:SourceArn",
        f"add FILL({term}, 0) (CommandResultsRule) to the *-rule-delivery-failures alarm's expression",
    ]


def test_given_an_environment_then_commands_run_only_the_shell_document_on_this_stacks_instances(
    deployed: Stack,
) -> None:
    sends = [s for s in statements(deployed) if "ssm:SendCommand" in inv._as_list(s["Action"])]
    assert sends, "LifecycleFunction may not send commands"
    for statement in sends:
        [resource] = inv._as_list(statement["Resource"])
        if ":document/" in resource:
            assert resource.endswith(":document/AWS-RunShellScript")
            continue
        assert resource.endswith(":instance/*")
        condition = statement["Condition"]["StringEquals"]["ssm:resourceTag/aws:autoscaling:groupName"]
        assert set(condition) == groups(deployed)


def test_given_an_environment_then_the_actions_table_is_keyed_per_instance_and_expires(deployed: Stack) -> None:
    (table,) = [t for t in inv.of_type(deployed, "AWS::DynamoDB::Table") if t.logical_id == "LifecycleActionsTable"]
    props = table.properties
    assert props["KeySchema"] == [
        {"AttributeName": "instance_id", "KeyType": "HASH"},
        {"AttributeName": "action", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_given_an_environment_then_the_lifecycle_alarms_watch_the_dimensions_the_function_emits(
    deployed: Stack,
) -> None:
    variables = function(deployed).properties["Environment"]["Variables"]
    emitted = {"Environment": variables["ENVIRONMENT"], "service": variables["POWERTOOLS_SERVICE_NAME"]}
    alarms = [
        a.properties
        for a in inv.of_type(deployed, "AWS::CloudWatch::Alarm")
        if "-lifecycle-" in a.properties["AlarmName"]
    ]
    watched = [a for a in alarms if a.get("Namespace") == "QueueScaler"] + [
        m["MetricStat"]["Metric"]
        for a in alarms
        for m in a.get("Metrics", [])
        if "MetricStat" in m and m["MetricStat"]["Metric"]["Namespace"] == "QueueScaler"
    ]
    assert {w["MetricName"] for w in watched} == {
        Metric.LIFECYCLE_ACTIONS_FAILED,
        Metric.LIFECYCLE_ACTIONS_FORCED,
        Metric.LIFECYCLE_ERRORS,
        Metric.LIFECYCLE_ACTIONS_UNREADABLE,
    }
    for metric in watched:
        assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == emitted


def test_given_an_environment_then_the_intake_queue_outlasts_its_consumer_and_every_hook(deployed: Stack) -> None:
    (queue,) = [q for q in inv.of_type(deployed, "AWS::SQS::Queue") if q.logical_id == "LifecycleEventsQueue"]
    props = queue.properties
    # AWS's advice for a queue read by an event source mapping: visibility >= 6 x the function's timeout.
    assert int(props["VisibilityTimeout"]) >= 6 * int(function(deployed).properties["Timeout"])
    # Throttled receives count: at least AWS's advised 5 before a record is dead-lettered.
    assert int(props["RedrivePolicy"]["maxReceiveCount"]) >= 5
    # No event expires while its instance can still wait at a hook (the hook's global timeout).
    longest = max(
        hook_maximum(int(h["HeartbeatTimeout"]))
        for g in inv.of_type(deployed, "AWS::AutoScaling::AutoScalingGroup")
        for h in g.properties["LifecycleHookSpecificationList"]
    )
    assert int(props["MessageRetentionPeriod"]) > longest


def test_given_an_environment_then_every_launch_hook_fails_closed(deployed: Stack) -> None:
    launch = [
        h
        for g in inv.of_type(deployed, "AWS::AutoScaling::AutoScalingGroup")
        for h in g.properties["LifecycleHookSpecificationList"]
        if h["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    ]
    assert len(launch) == len(groups(deployed))
    assert {h["DefaultResult"] for h in launch} == {"ABANDON"}


def test_given_an_environment_then_the_gate_exists_before_any_group_and_outlives_it(deployed: Stack) -> None:
    """CloudFormation creates a resource after what it depends on and deletes it before: every pool
    (its group launches at once) depends on the whole gate, and no gate resource reads a pool."""
    gate = lifecycle_wiring.expected().gate | {
        "LifecycleEvents",  # its event source mapping (a resource of its own, not a SAM SQS event)
        f"{FUNCTION}ReconcilePermission",
    }
    pools = {
        logical_id: raw
        for logical_id, raw in deployed.template["Resources"].items()
        if raw["Type"] == "AWS::CloudFormation::Stack" and "pool" in str(raw["Properties"].get("TemplateURL", ""))
    }
    assert pools
    for logical_id, raw in pools.items():
        assert gate <= set(inv._as_list(raw.get("DependsOn", []))), f"{logical_id} may launch before the gate"
    for name in gate | {"LifecycleEventsQueue", f"{FUNCTION}Role"}:
        text = json.dumps(deployed.template["Resources"][name])
        assert not any(pool in text for pool in pools), f"{name} reads a pool: the pool could not depend on it"


def test_given_an_environment_then_every_group_replaces_its_at_risk_spot_instances_itself(deployed: Stack) -> None:
    """One replacement per leaving instance: Auto Scaling's Capacity Rebalancing, and so never the
    scaler's pre-launch too (domain.fleet.GroupState.replaced_by_scaler reads the same flag)."""
    flags = [g.properties.get("CapacityRebalance") for g in inv.of_type(deployed, "AWS::AutoScaling::AutoScalingGroup")]
    assert flags and all(flag in (True, "true") for flag in flags)

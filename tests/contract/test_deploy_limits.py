"""What a deploy needs from the account, how new images reach fleets, alarms, and the sample events.

A new account's Lambda concurrency limit is 10, and Lambda keeps part of it unreserved: a stack that
reserves concurrency by default does not deploy there. The DLQ mappings bound their concurrency
instead. A new AMI or image rolls each group through its terminate hook. Every failure path has an
alarm. The alarm sample in events/ is the alarm the template defines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devkit.stackmodel import ROOT, ROOT_TEMPLATE, Stack, root_stack

from . import invariants as inv
from .conftest import SAMCONFIG


def defaults_only(templates: dict[str, Any]) -> Stack:
    """The stack with every parameter at its default: only those without one are given (dev's)."""
    deploy = inv.environments(inv.load_samconfig(SAMCONFIG))["dev"]
    declared = templates[ROOT_TEMPLATE]["Parameters"]
    required = {k: v for k, v in inv.parameter_overrides(deploy).items() if "Default" not in declared[k]}
    return root_stack(templates, required, deploy["stack_name"], deploy["region"])


def test_given_default_parameters_then_no_function_reserves_concurrency(templates: dict[str, Any]) -> None:
    functions = inv.of_type(defaults_only(templates), "AWS::Lambda::Function")
    assert len(functions) == 4
    assert {f.logical_id: f.properties.get("ReservedConcurrentExecutions") for f in functions} == {
        f.logical_id: None for f in functions
    }


def test_given_the_reservation_parameter_then_only_the_scaler_reserves_one(templates: dict[str, Any]) -> None:
    deploy = inv.environments(inv.load_samconfig(SAMCONFIG))["dev"]
    overrides = inv.parameter_overrides(deploy) | {"ScalerReservedConcurrency": "1"}
    stack = root_stack(templates, overrides, deploy["stack_name"], deploy["region"])
    reserved = {
        f.logical_id: f.properties["ReservedConcurrentExecutions"]
        for f in inv.of_type(stack, "AWS::Lambda::Function")
        if "ReservedConcurrentExecutions" in f.properties
    }
    assert reserved == {"ScalerFunction": 1}


def test_given_an_environment_then_every_dead_letter_mapping_bounds_its_concurrency(deployed: Stack) -> None:
    mappings = inv.of_type(deployed, "AWS::Lambda::EventSourceMapping")
    # SQS event sources accept 2 to 1000 (Lambda's ScalingConfig); every mapping sets one.
    assert all(2 <= m.properties["ScalingConfig"]["MaximumConcurrency"] <= 1000 for m in mappings)
    dead_letters = [m for m in mappings if m.logical_id == "DeadLetterRefunds"]
    assert len(dead_letters) == 11
    assert {m.properties["ScalingConfig"]["MaximumConcurrency"] for m in dead_letters} == {2}


def test_given_an_environment_then_a_new_launch_template_version_rolls_each_group_through_its_hooks(
    deployed: Stack,
) -> None:
    groups = inv.of_type(deployed, "AWS::AutoScaling::AutoScalingGroup")
    assert len(groups) == 3
    for group in groups:
        # No CloudFormation rolling update (it would fight the scaler's SetDesiredCapacity): the scaler
        # starts an instance refresh, whose replacements pass through the hooks.
        assert "UpdatePolicy" not in group.raw
        transitions = {h["LifecycleTransition"] for h in group.properties["LifecycleHookSpecificationList"]}
        assert transitions == {"autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"}
        # The group names the launch template's version by number: a new AMI or image is an update, and
        # the scaler compares each instance's version with it. Both ways the pool template picks: a mixed
        # instances policy, or (with a warm pool) the plain launch template.
        mixed = group.raw["Properties"]["MixedInstancesPolicy"]["Fn::If"][2]
        plain = group.raw["Properties"]["LaunchTemplate"]["Fn::If"][1]
        for template in (mixed["LaunchTemplate"]["LaunchTemplateSpecification"], plain):
            assert template["Version"] == {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]}


def _alarm_metrics(alarm: Any) -> set[tuple[str, str, str]]:
    out = set()
    for metric in alarm.properties.get("Metrics", []):
        if "MetricStat" in metric:
            stat = metric["MetricStat"]["Metric"]
            for dimension in stat.get("Dimensions", []):
                out.add((stat["MetricName"], dimension["Name"], str(dimension["Value"])))
    if "MetricName" in alarm.properties:
        for dimension in alarm.properties.get("Dimensions", []):
            out.add((alarm.properties["MetricName"], dimension["Name"], str(dimension["Value"])))
    return out


def test_given_an_environment_then_every_function_every_rule_and_abandoned_launches_have_alarms(
    deployed: Stack,
) -> None:
    watched = set().union(*(_alarm_metrics(a) for a in inv.of_type(deployed, "AWS::CloudWatch::Alarm")))
    for function in inv.of_type(deployed, "AWS::Lambda::Function"):
        name = deployed.ref(function.logical_id)
        assert ("Errors", "FunctionName", name) in watched, f"{function.logical_id} errors page nobody"
    for rule in inv.of_type(deployed, "AWS::Events::Rule"):
        name = deployed.ref(rule.logical_id)
        # Invocations counts failed deliveries too: an alarm on it (the launch failures') covers them.
        covered = {("FailedInvocations", "RuleName", name), ("Invocations", "RuleName", name)}
        assert covered & watched, f"{rule.logical_id} delivery failures"
    assert ("LaunchesAbandoned", "Environment", deployed.parameters["EnvironmentName"]) in watched


def test_given_the_worker_role_then_it_consumes_exactly_its_own_pools_queues(deployed: Stack) -> None:
    for pool in ("MessagingPool", "VideoPool", "AiPool"):
        stack = deployed.child(pool)
        queues = {q.stack.get_att(q.logical_id, "Arn") for q in inv.job_queues(deployed) if q.stack.parent is stack}
        role = stack.resources()["WorkerRole"].properties
        sqs = [
            s
            for p in role["Policies"]
            for s in p["PolicyDocument"]["Statement"]
            if any(str(a).startswith("sqs:") for a in inv._as_list(s["Action"]))
        ]
        assert len(sqs) == 1
        assert sorted(sqs[0]["Action"]) == ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"]
        assert set(sqs[0]["Resource"]) == queues and len(queues) in (1, 5)


@pytest.fixture
def dev(templates: dict[str, Any]) -> Stack:
    deploy = inv.environments(inv.load_samconfig(SAMCONFIG))["dev"]
    return root_stack(templates, inv.parameter_overrides(deploy), deploy["stack_name"], deploy["region"])


def test_given_the_alarm_sample_then_it_is_the_backlog_at_zero_alarm_the_template_defines(dev: Stack) -> None:
    sample = json.loads((ROOT / "events" / "scaler" / "alarm-backlog-at-zero.json").read_text())
    detail = sample["detail"]
    (alarm,) = [
        a for a in inv.of_type(dev, "AWS::CloudWatch::Alarm") if a.properties["AlarmName"] == detail["alarmName"]
    ]
    assert sample["region"] == dev.pseudo["AWS::Region"]
    assert sample["resources"] == [
        f"arn:aws:cloudwatch:{sample['region']}:{sample['account']}:alarm:{detail['alarmName']}"
    ]
    props = alarm.properties
    # A single-metric alarm: CloudWatch names its one metric with a generated id, so the id is not compared.
    expected = [
        {
            "namespace": props["Namespace"],
            "name": props["MetricName"],
            "dimensions": {d["Name"]: str(d["Value"]) for d in props["Dimensions"]},
            "period": props["Period"],
            "stat": props["Statistic"],
            "returnData": True,
        }
    ]
    sent = []
    for metric in detail["configuration"]["metrics"]:
        stat = metric["metricStat"]
        sent.append(
            {
                "namespace": stat["metric"]["namespace"],
                "name": stat["metric"]["name"],
                "dimensions": stat["metric"]["dimensions"],
                "period": stat["period"],
                "stat": stat["stat"],
                "returnData": metric["returnData"],
            }
        )
    assert sent == expected
    threshold = float(alarm.properties["Threshold"])
    assert alarm.properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert f"greater than or equal to the threshold ({threshold})" in detail["state"]["reason"]
    assert json.loads(detail["state"]["reasonData"])["threshold"] == threshold


def test_given_the_lifecycle_samples_then_each_is_an_eventbridge_event() -> None:
    # Auto Scaling sends its test notification only to SNS or SQS targets, never through EventBridge.
    # A sample is an EventBridge event, or LifecycleEventsQueue's SQS batch of them (how the rules deliver).
    for path in sorted((ROOT / "events" / "lifecycle").glob("*.json")):
        sample = json.loads(path.read_text())
        events = [json.loads(r["body"]) for r in sample["Records"]] if "Records" in sample else [sample]
        assert events, path.name
        assert all("detail-type" in event for event in events), path.name

"""The refund and metrics functions as the stack wires them, and the target-tracking ScalingMode."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.stackmodel import Stack, root_stack
from queue_scaler.settings import DlqRefundSettings

from . import invariants as inv
from .invariants import environments, parameter_overrides


def function(stack: Stack, logical_id: str) -> inv.Resource:
    (found,) = [f for f in inv.of_type(stack, "AWS::Lambda::Function") if f.logical_id == logical_id]
    return found


def test_given_an_environment_then_every_dead_letter_queue_feeds_the_refund_function(deployed: Stack) -> None:
    # The pools' queues (nested stacks): the root's lifecycle events queues carry no jobs.
    queues = [q for q in inv.of_type(deployed, "AWS::SQS::Queue") if q.stack is not deployed]
    job_arns = {str(q.stack.get_att(q.logical_id, "Arn")) for q in inv.job_queues(deployed)}
    dlq_arns = {str(q.stack.get_att(q.logical_id, "Arn")) for q in queues} - job_arns
    refund_name = deployed.ref("DlqRefundFunction")
    mappings = [
        m
        for m in inv.of_type(deployed, "AWS::Lambda::EventSourceMapping")
        if m.properties["FunctionName"] == refund_name
    ]
    assert {m.properties["EventSourceArn"] for m in mappings} == dlq_arns and len(dlq_arns) == 11
    refund = deployed.ref("DlqRefundFunction")
    for mapping in mappings:
        assert mapping.properties["FunctionName"] == refund
        assert mapping.properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    timeout = function(deployed, "DlqRefundFunction").properties["Timeout"]
    for queue in queues:
        if str(queue.stack.get_att(queue.logical_id, "Arn")) in dlq_arns:
            assert queue.properties["VisibilityTimeout"] >= 6 * timeout


def refund_settings(deployed: Stack, monkeypatch: pytest.MonkeyPatch) -> DlqRefundSettings:
    """DlqRefundFunction's settings as it reads them from the environment the template gives it."""
    props = function(deployed, "DlqRefundFunction").properties
    for name, value in props["Environment"]["Variables"].items():
        monkeypatch.setenv(name, str(value))
    return DlqRefundSettings()  # type: ignore[call-arg]  # read from the environment


def test_given_an_environment_then_the_refund_settings_load_from_the_template_environment(
    deployed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = refund_settings(deployed, monkeypatch)
    assert settings.ledger_table == deployed.ref("LedgerTable")
    assert settings.parking_table == deployed.ref("ParkingTable")
    assert settings.notice_topic_arn == deployed.ref("NoticeTopic")
    assert settings.policy().uncharged_plans == {"free"}


def stack_with(templates: dict[str, Any], samconfig: dict[str, Any], **overrides: str) -> Stack:
    deploy = environments(samconfig)["dev"]
    parameters = parameter_overrides(deploy) | overrides
    return root_stack(templates, parameters, deploy["stack_name"], deploy["region"])


def test_given_video_in_target_tracking_mode_then_it_tracks_backlog_per_instance_and_the_scaler_leaves_it(
    templates: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    stack = stack_with(templates, samconfig, VideoScalingMode="target-tracking")
    assert [p.name for p in inv.scaler_config(stack).pools] == ["messaging", "ai"]
    assert inv.config_violations(stack) == []
    (policy,) = inv.of_type(stack, "AWS::AutoScaling::ScalingPolicy")
    spec = policy.properties["TargetTrackingConfiguration"]
    assert spec["TargetValue"] == "3"  # the enterprise queue's target
    metric = spec["CustomizedMetricSpecification"]
    assert (metric["Namespace"], metric["MetricName"]) == ("QueueScaler", "BacklogPerInstance")
    assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == {
        "Environment": "dev",
        "Pool": "video",
        "service": "queue-scaler",
    }


def test_given_the_default_mode_then_no_pool_has_a_target_tracking_policy(deployed: Stack) -> None:
    assert inv.of_type(deployed, "AWS::AutoScaling::ScalingPolicy") == []
    assert len(inv.scaler_config(deployed).pools) == 3


def test_given_an_environment_then_a_refund_needs_as_many_real_failures_as_the_queues_allow_receives(
    deployed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = refund_settings(deployed, monkeypatch)
    receives = {int(q.properties["RedrivePolicy"]["maxReceiveCount"]) for q in inv.job_queues(deployed)}
    assert receives == {settings.required_failures} and settings.max_returns >= 1


def test_given_an_environment_then_workers_may_write_only_the_jobs_items_of_the_ledger(deployed: Stack) -> None:
    policies = [
        p for p in inv.of_type(deployed, "AWS::IAM::Policy") if p.properties["PolicyName"] == "record-job-attempts"
    ]
    assert len(policies) == 3  # one per pool's WorkerRole
    ledger = deployed.ref("LedgerTable")
    # Which items and attributes: tests/contract/test_least_privilege.py.
    for policy in policies:
        for statement in policy.properties["PolicyDocument"]["Statement"]:
            assert str(statement["Resource"]).endswith(f":table/{ledger}")
    names = {p.properties["Name"]: p.properties["Value"] for p in inv.of_type(deployed, "AWS::SSM::Parameter")}
    assert [n for n, v in names.items() if n.endswith("/LEDGER_TABLE") and v == ledger] != []

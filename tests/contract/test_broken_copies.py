"""Each invariant's check fails on a copy of the templates (or samconfig) that breaks it.

Without these, a check that can never fail would pass tests/contract/test_stack.py just as well.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from devkit.stackmodel import Stack, root_stack

from . import invariants as inv

Templates = dict[str, Any]
ROOT, POOL, QUEUE = "template.yaml", "templates/pool.yaml", "templates/queue.yaml"


def _resource(templates: Templates, key: str, logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = templates[key]["Resources"][logical_id]["Properties"]
    return properties


def _scaler_statement(templates: Templates, sid: str) -> dict[str, Any]:
    (policy,) = _resource(templates, ROOT, "ScalerFunctionRole")["Policies"]
    (statement,) = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == sid]
    return statement


def _worker_statements(templates: Templates, policy_name: str) -> list[dict[str, Any]]:
    (policy,) = [p for p in _resource(templates, POOL, "WorkerRole")["Policies"] if p["PolicyName"] == policy_name]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def _rewrite(templates: Templates, key: str, old: str, new: str) -> None:
    text = json.dumps(templates[key])
    assert old in text, old
    templates[key] = json.loads(text.replace(old, new))


def _drop_redrive(t: Templates) -> None:
    del _resource(t, QUEUE, "JobQueue")["RedrivePolicy"]


def _redrive_nowhere(t: Templates) -> None:
    _resource(t, QUEUE, "JobQueue")["RedrivePolicy"]["deadLetterTargetArn"] = "arn:aws:sqs:us-east-1:1:elsewhere"


def _unencrypted_dlq(t: Templates) -> None:
    del _resource(t, QUEUE, "DeadLetterQueue")["SqsManagedSseEnabled"]


def _short_visibility(t: Templates) -> None:
    t[ROOT]["Parameters"]["VideoVisibilityTimeoutSeconds"]["Default"] = 500  # < 3 x 180


def _no_ok_action(t: Templates) -> None:
    del _resource(t, QUEUE, "OldestJobAlarm")["OKActions"]


def _silent_scaler_alarm(t: Templates) -> None:
    _resource(t, ROOT, "ScalerErrorsAlarm")["AlarmActions"] = []


def _paging_trigger(t: Templates) -> None:
    _resource(t, POOL, "BacklogAtZeroAlarm")["AlarmActions"] = [{"Ref": "AlarmTopicArn"}]


def _deaf_trigger_rule(t: Templates) -> None:
    _resource(t, ROOT, "ScalerFunctionBacklogAtZero")["EventPattern"]["detail"]["alarmName"].pop()


def _sqs_star(t: Templates) -> None:
    _scaler_statement(t, "ReadJobQueues")["Action"] = "sqs:*"


def _logs_prefix_wildcard(t: Templates) -> None:
    _worker_statements(t, "write-worker-logs")[0]["Action"] = ["logs:Put*"]


def _not_action(t: Templates) -> None:
    statement = _scaler_statement(t, "History")
    statement["NotAction"] = statement.pop("Action")


def _set_desired_anywhere(t: Templates) -> None:
    _scaler_statement(t, "SizeThisStacksGroups")["Resource"] = "*"


def _set_desired_foreign_group(t: Templates) -> None:
    _scaler_statement(t, "SizeThisStacksGroups")["Resource"] = [
        {
            "Fn::Sub": "arn:aws:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*:"
            "autoScalingGroupName/other"
        }
    ]


def _lifecycle_on_any_group(t: Templates) -> None:
    _scaler_statement(t, "History")["Action"] = "autoscaling:CompleteLifecycleAction"


def _no_terminate_hook(t: Templates) -> None:
    _resource(t, POOL, "AutoScalingGroup")["LifecycleHookSpecificationList"].pop()


def _short_terminate_hook(t: Templates) -> None:
    t[POOL]["Mappings"]["DrainWindows"]["60"]["TerminateHeartbeatSeconds"] = 100  # < 2 x (60 + 20)


def _imds_v1(t: Templates) -> None:
    _resource(t, POOL, "LaunchTemplate")["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] = "optional"


def _misnamed_config_field(t: Templates) -> None:
    _rewrite(t, POOL, '\\"min_size\\"', '\\"minimum_size\\"')


def _pool_left_out_of_config(t: Templates) -> None:
    _rewrite(t, ROOT, '{"Fn::GetAtt": ["AiPool", "Outputs.Config"]}', '{"Ref": "AWS::NoValue"}')


def _config_names_a_foreign_group(t: Templates) -> None:
    _rewrite(
        t,
        POOL,
        '\\"auto_scaling_group\\":\\"${AutoScalingGroup}\\"',
        '\\"auto_scaling_group\\":\\"${AutoScalingGroup}-old\\"',
    )


STACK_CASES: list[tuple[str, Callable[[Templates], None], Callable[[Stack], list[str]], str]] = [
    ("job queue without redrive", _drop_redrive, inv.redrive_violations, "without a redrive policy"),
    ("redrive to no queue", _redrive_nowhere, inv.redrive_violations, "redrive policy"),
    ("unencrypted DLQ", _unencrypted_dlq, inv.encryption_violations, "not encrypted"),
    ("visibility below 3x job time", _short_visibility, inv.visibility_violations, "< 3 x average job"),
    ("alarm without OK action", _no_ok_action, inv.alarm_action_violations, "OKActions lacks"),
    ("scaler alarm without action", _silent_scaler_alarm, inv.alarm_action_violations, "AlarmActions lacks"),
    ("trigger alarm that pages", _paging_trigger, inv.alarm_action_violations, "must not page"),
    ("rule deaf to a trigger alarm", _deaf_trigger_rule, inv.trigger_rule_violations, "alarm rule listens"),
    ("sqs:*", _sqs_star, inv.action_wildcard_violations, "'sqs:*'"),
    ("logs:Put*", _logs_prefix_wildcard, inv.action_wildcard_violations, "'logs:Put*'"),
    ("NotAction", _not_action, inv.action_wildcard_violations, "NotAction"),
    ("SetDesiredCapacity on *", _set_desired_anywhere, inv.group_write_violations, "autoscaling:setdesired"),
    ("SetDesiredCapacity elsewhere", _set_desired_foreign_group, inv.group_write_violations, "/other"),
    ("lifecycle call on a table", _lifecycle_on_any_group, inv.group_write_violations, "completelifecycle"),
    ("no terminate hook", _no_terminate_hook, inv.lifecycle_violations, "no terminate lifecycle hook"),
    ("terminate hook shorter than drain", _short_terminate_hook, inv.lifecycle_violations, "< 2 x (60 + 20)"),
    ("IMDSv1 allowed", _imds_v1, inv.launch_template_violations, "IMDSv2"),
    ("config field misnamed", _misnamed_config_field, inv.config_violations, "does not validate"),
    ("pool left out of config", _pool_left_out_of_config, inv.config_violations, "is in no pool"),
    (
        "config names another group",
        _config_names_a_foreign_group,
        inv.config_violations,
        "-old is not one of",
    ),
]


@pytest.mark.parametrize(("mutate", "check", "expected"), [c[1:] for c in STACK_CASES], ids=[c[0] for c in STACK_CASES])
def test_given_a_broken_copy_when_checked_then_the_violation_is_reported(
    templates: Templates,
    samconfig: dict[str, Any],
    mutate: Callable[[Templates], None],
    check: Callable[[Stack], list[str]],
    expected: str,
) -> None:
    deploy = inv.environments(samconfig)["dev"]
    overrides = inv.parameter_overrides(deploy)
    assert check(root_stack(templates, overrides, deploy["stack_name"], deploy["region"])) == []

    broken = copy.deepcopy(templates)
    mutate(broken)
    violations = check(root_stack(broken, overrides, deploy["stack_name"], deploy["region"]))
    assert any(expected in v for v in violations), inv.pretty(violations)


def test_given_a_drain_window_without_enough_hook_time_then_the_mapping_check_fails(
    templates: Templates,
) -> None:
    pool = copy.deepcopy(templates[POOL])
    pool["Mappings"]["DrainWindows"]["600"]["TerminateHeartbeatSeconds"] = 1000
    assert inv.drain_window_violations(pool) == ["DrainWindows[600]: terminate hook 1000 s < 2 x (600 + 20) s"]


def _drop_required(c: dict[str, Any]) -> None:
    c["dev"]["deploy"]["parameters"]["parameter_overrides"].remove("AlarmEmail=oncall-dev@example.com")


def _add_unknown(c: dict[str, Any]) -> None:
    c["staging"]["deploy"]["parameters"]["parameter_overrides"].append("VideoMaxSise=5")


def _prod_unconfirmed(c: dict[str, Any]) -> None:
    c["prod"]["deploy"]["parameters"]["confirm_changeset"] = False


def _no_auto_expand(c: dict[str, Any]) -> None:
    c["prod"]["deploy"]["parameters"]["capabilities"] = "CAPABILITY_IAM"


def _wrong_environment(c: dict[str, Any]) -> None:
    overrides = c["staging"]["deploy"]["parameters"]["parameter_overrides"]
    overrides[overrides.index("EnvironmentName=staging")] = "EnvironmentName=prod"


SAMCONFIG_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("required parameter missing", _drop_required, "dev: misses required parameter AlarmEmail"),
    ("unknown parameter", _add_unknown, "staging: sets unknown parameter VideoMaxSise"),
    ("prod without confirmation", _prod_unconfirmed, "prod: confirm_changeset must be true"),
    ("nested stacks not allowed", _no_auto_expand, "prod: lacks CAPABILITY_AUTO_EXPAND"),
    ("environment mislabelled", _wrong_environment, "staging: EnvironmentName is 'prod'"),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in SAMCONFIG_CASES], ids=[c[0] for c in SAMCONFIG_CASES])
def test_given_a_broken_samconfig_when_checked_then_the_violation_is_reported(
    templates: Templates, samconfig: dict[str, Any], mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    broken = copy.deepcopy(samconfig)
    mutate(broken)
    assert expected in inv.samconfig_violations(templates[ROOT], broken)

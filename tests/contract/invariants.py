"""The stack's invariants, each a function returning its violations (an empty list when it holds).

They take the instantiated stack tree (devkit/stackmodel.py), so that a broken copy of a template
can be checked with the very same function the real template passes.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from devkit.stackmodel import Resource, Stack
from queue_scaler.lifecycle.domain.deadlines import hook_floor_seconds
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.settings import LifecycleSettings

SCALER = "ScalerFunction"
ALARM_TOPIC = "AlarmTopic"
# Alarms that wake the scaler through EventBridge instead of paging anyone (templates/pool.yaml).
TRIGGER_ALARM_SUFFIX = "-backlog-at-zero"
# Auto Scaling calls that change a group: they must name this stack's groups.
GROUP_WRITES = {
    "autoscaling:setdesiredcapacity",
    "autoscaling:completelifecycleaction",
    "autoscaling:recordlifecycleactionheartbeat",
    "autoscaling:setinstanceprotection",
    "autoscaling:terminateinstanceinautoscalinggroup",
}


# Resources holding one policy document (identity or resource policy) in `PolicyDocument`.
POLICY_DOCUMENT_TYPES = {
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
}


def of_type(root: Stack, kind: str) -> list[Resource]:
    return [r for r in root.walk() if r.type == kind]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- queues ---------------------------------------------------------------------------------------
def job_queues(root: Stack) -> list[Resource]:
    """The pools' queues (nested stacks) that are not some other queue's dead-letter queue."""
    queues = of_type(root, "AWS::SQS::Queue")
    dead_letter_arns = {
        q.properties["RedrivePolicy"]["deadLetterTargetArn"] for q in queues if "RedrivePolicy" in q.properties
    }
    return [q for q in queues if q.stack is not root and _queue_arn(q) not in dead_letter_arns]


def _queue_arn(queue: Resource) -> str:
    return str(queue.stack.get_att(queue.logical_id, "Arn"))


def redrive_violations(root: Stack) -> list[str]:
    """Every job queue redrives to an existing queue of the stack, after a bounded number of receives."""
    arns = {_queue_arn(q) for q in of_type(root, "AWS::SQS::Queue")}
    violations = []
    for queue in job_queues(root):
        policy = queue.properties.get("RedrivePolicy")
        if not policy:
            violations.append(f"{queue.path}: job queue without a redrive policy")
            continue
        if policy.get("deadLetterTargetArn") not in arns:
            violations.append(f"{queue.path}: dead-letter target {policy.get('deadLetterTargetArn')} is no queue")
        if int(policy.get("maxReceiveCount", 0)) < 1:
            violations.append(f"{queue.path}: maxReceiveCount must be at least 1")
    return violations


def encryption_violations(root: Stack) -> list[str]:
    return [
        f"{q.path}: not encrypted at rest"
        for q in of_type(root, "AWS::SQS::Queue")
        if not (q.properties.get("SqsManagedSseEnabled") in (True, "true") or q.properties.get("KmsMasterKeyId"))
    ]


def visibility_violations(root: Stack) -> list[str]:
    """A job's visibility timeout is at least 3 x its pool's average job time (seed design 2.2)."""
    violations = []
    for queue in job_queues(root):
        visibility = int(queue.properties.get("VisibilityTimeout", 30))
        average = int(queue.stack.ancestor_parameter("AverageJobSeconds"))
        if visibility < 3 * average:
            violations.append(f"{queue.path}: visibility timeout {visibility} s < 3 x average job {average} s")
    return violations


# --- alarms ---------------------------------------------------------------------------------------
def alarm_topic_arn(root: Stack) -> str:
    return str(root.ref(ALARM_TOPIC))


def alarm_action_violations(root: Stack) -> list[str]:
    """On-call alarms notify the topic on ALARM and OK; the scaler's trigger alarms notify no one."""
    topic = alarm_topic_arn(root)
    violations = []
    for alarm in of_type(root, "AWS::CloudWatch::Alarm"):
        props = alarm.properties
        if str(props.get("AlarmName", "")).endswith(TRIGGER_ALARM_SUFFIX):
            if props.get("AlarmActions") or props.get("OKActions"):
                violations.append(f"{alarm.path}: a scaler trigger alarm must not page")
            continue
        for key in ("AlarmActions", "OKActions"):
            if topic not in props.get(key, []):
                violations.append(f"{alarm.path}: {key} lacks the on-call topic")
    return violations


def trigger_rule_violations(root: Stack) -> list[str]:
    """The scaler's alarm rule listens to exactly the stack's trigger alarms."""
    triggers = {
        a.properties["AlarmName"]
        for a in of_type(root, "AWS::CloudWatch::Alarm")
        if str(a.properties.get("AlarmName", "")).endswith(TRIGGER_ALARM_SUFFIX)
    }
    rules = [
        r
        for r in of_type(root, "AWS::Events::Rule")
        if "aws.cloudwatch" in r.properties.get("EventPattern", {}).get("source", [])
    ]
    if not rules:
        return ["no EventBridge rule on alarm state changes"]
    listened = {name for r in rules for name in r.properties["EventPattern"]["detail"]["alarmName"]}
    return [] if listened == triggers else [f"alarm rule listens to {sorted(listened)}, not {sorted(triggers)}"]


# --- IAM ------------------------------------------------------------------------------------------
def policy_statements(root: Stack) -> list[tuple[str, dict[str, Any]]]:
    """(where, statement) for every identity and resource policy of the stack tree."""
    found: list[tuple[str, dict[str, Any]]] = []
    for resource in root.walk():
        props = resource.properties
        documents = []
        if resource.type == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource.type in POLICY_DOCUMENT_TYPES:
            documents = [props["PolicyDocument"]]
        for document in documents:
            found += [(resource.path, s) for s in _as_list(document["Statement"])]
    return found


def action_wildcard_violations(root: Stack) -> list[str]:
    violations = []
    for where, statement in policy_statements(root):
        if "NotAction" in statement:
            violations.append(f"{where}: NotAction grants everything else")
        for action in _as_list(statement.get("Action", [])):
            if "*" in action:
                violations.append(f"{where}: action wildcard {action!r}")
    return violations


def group_write_violations(root: Stack) -> list[str]:
    """SetDesiredCapacity and lifecycle calls name only this stack's groups, by ARN."""
    groups = {g.properties["AutoScalingGroupName"] for g in of_type(root, "AWS::AutoScaling::AutoScalingGroup")}
    arn = re.compile(r"^arn:aws:autoscaling:[a-z0-9-]+:\d{12}:autoScalingGroup:\*:autoScalingGroupName/(.+)$")
    violations = []
    for where, statement in policy_statements(root):
        writes = {a.lower() for a in _as_list(statement.get("Action", []))} & GROUP_WRITES
        if not writes:
            continue
        for resource in _as_list(statement.get("Resource", [])):
            match = arn.match(str(resource))
            if not match or match.group(1) not in groups:
                violations.append(f"{where}: {sorted(writes)} on {resource!r}, not one of this stack's groups")
    return violations


# --- pools ----------------------------------------------------------------------------------------
def lifecycle_violations(root: Stack) -> list[str]:
    """Every group has a launch hook and a terminate hook outlasting the drain: 2 x (drain + 20) s."""
    violations = []
    for group in of_type(root, "AWS::AutoScaling::AutoScalingGroup"):
        hooks = {h["LifecycleTransition"]: h for h in group.properties.get("LifecycleHookSpecificationList", [])}
        if "autoscaling:EC2_INSTANCE_LAUNCHING" not in hooks:
            violations.append(f"{group.path}: no launch lifecycle hook")
        terminate = hooks.get("autoscaling:EC2_INSTANCE_TERMINATING")
        if terminate is None:
            violations.append(f"{group.path}: no terminate lifecycle hook")
            continue
        drain = int(group.stack.ancestor_parameter("DrainSeconds"))
        if int(terminate["HeartbeatTimeout"]) < 2 * (drain + 20):
            violations.append(f"{group.path}: terminate hook {terminate['HeartbeatTimeout']} s < 2 x ({drain} + 20) s")
        violations += _hook_after_kill(str(group.path), drain, int(terminate["HeartbeatTimeout"]))
    return violations


def _hook_after_kill(where: str, drain: int, timeout: int) -> list[str]:
    """Even unheartbeated, the hook ends after Docker's SIGKILL and the drain's delivery grace
    (queue_scaler/lifecycle/domain/deadlines.py), so that it never terminates a worker still releasing its jobs."""
    floor = hook_floor_seconds(drain, LifecycleSettings.model_fields["drain_grace_seconds"].default)
    return [f"{where}: terminate hook {timeout} s < {floor:g} s (SIGKILL + grace)"] if timeout < floor else []


def drain_window_violations(pool_template: dict[str, Any]) -> list[str]:
    """Every allowed drain window maps to a terminate hook timeout of at least 2 x (drain + 20)."""
    windows = pool_template["Mappings"]["DrainWindows"]
    violations = []
    for drain in pool_template["Parameters"]["DrainSeconds"]["AllowedValues"]:
        timeout = windows.get(str(drain), {}).get("TerminateHeartbeatSeconds", 0)
        if int(timeout) < 2 * (int(drain) + 20):
            violations.append(f"DrainWindows[{drain}]: terminate hook {timeout} s < 2 x ({drain} + 20) s")
        violations += _hook_after_kill(f"DrainWindows[{drain}]", int(drain), int(timeout))
    return violations


def spot_violations(root: Stack) -> list[str]:
    """Every group is Spot-ready: two or more Graviton types, price-capacity-optimized, capacity rebalancing."""
    violations = []
    for group in of_type(root, "AWS::AutoScaling::AutoScalingGroup"):
        policy = group.properties.get("MixedInstancesPolicy")
        if policy is None:
            violations.append(f"{group.path}: no MixedInstancesPolicy")
            continue
        types = [o["InstanceType"] for o in policy["LaunchTemplate"].get("Overrides", [])]
        if len(types) < 2 or len(set(types)) != len(types):
            violations.append(f"{group.path}: {types}: at least two distinct instance types")
        if not all(re.fullmatch(r"[a-z]+[0-9]+g[a-z]*\.[a-z0-9]+", t) for t in types):
            violations.append(f"{group.path}: {types}: every type must be arm64 (Graviton), as the AMI is")
        violations += instance_type_violations(str(group.path), types)
        distribution = policy.get("InstancesDistribution", {})
        if distribution.get("SpotAllocationStrategy") != "price-capacity-optimized":
            violations.append(f"{group.path}: Spot allocation is not price-capacity-optimized")
        if group.properties.get("CapacityRebalance") is not True:
            violations.append(f"{group.path}: no capacity rebalancing")
    return violations


#: GiB of memory per vCPU of the Graviton families a pool may use (the EC2 instance types' documented
#: sizes), by the family's first letter; and the vCPUs of each size. A type outside them is reported,
#: so that its memory is added here before a pool uses it.
GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}
VCPUS = {
    "medium": 1,
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "12xlarge": 48,
    "16xlarge": 64,
}


def memory_gib(instance_type: str) -> int | None:
    """The memory of a Graviton type of a family in GIB_PER_VCPU, or None when unknown here."""
    family, _, size = instance_type.partition(".")
    ratio, vcpus = GIB_PER_VCPU.get(family[:1]), VCPUS.get(size)
    return None if ratio is None or vcpus is None else ratio * vcpus


def instance_type_violations(where: str, types: list[str]) -> list[str]:
    """No burstable (T) type, and one memory size in a pool: every instance gives the slots the same room."""
    violations = [
        f"{where}: {t} is burstable (unlimited CPU credits by default; not on Spot)" for t in types if t[:1] == "t"
    ]
    memory = {t: memory_gib(t) for t in types}
    unknown = sorted(t for t, gib in memory.items() if gib is None)
    if unknown:
        violations.append(f"{where}: memory of {unknown} unknown (tests/contract/invariants.py GIB_PER_VCPU)")
    elif len(set(memory.values())) > 1:
        violations.append(f"{where}: {memory}: every type of a pool must have the same memory")
    return violations


def launch_template_violations(root: Stack) -> list[str]:
    violations = []
    for template in of_type(root, "AWS::EC2::LaunchTemplate"):
        data = template.properties["LaunchTemplateData"]
        if data.get("MetadataOptions", {}).get("HttpTokens") != "required":
            violations.append(f"{template.path}: IMDSv2 is not required")
        if str(data.get("InstanceType", "")).startswith("t") or "CreditSpecification" in data:
            # A credit specification fails every non-T override's launch; a T type launches unlimited.
            violations.append(
                f"{template.path}: {data.get('InstanceType')}: no burstable type, no credit specification"
            )
    return violations


# --- the scaler's configuration -------------------------------------------------------------------
def scaler_config(root: Stack) -> ScalerConfig:
    """The SSM parameter's value, validated by the model the scaler reads it with."""
    return ScalerConfig.model_validate_json(root.resources()["PoolConfigParameter"].properties["Value"])


def config_violations(root: Stack) -> list[str]:
    """The configuration validates, names the real groups and queues, and fits a Standard parameter."""
    try:
        config = scaler_config(root)
    except ValidationError as error:
        return [f"the pool configuration does not validate: {error}"]
    violations = []
    # The scaler's pools, and every pool for MetricsFunction: both Standard parameters.
    for parameter in (p for p in of_type(root, "AWS::SSM::Parameter") if p.stack is root):
        if len(parameter.properties["Value"].encode()) > 4096:
            violations.append(f"{parameter.logical_id} exceeds a Standard SSM parameter's 4 KB")
    groups = {g.properties["AutoScalingGroupName"] for g in of_type(root, "AWS::AutoScaling::AutoScalingGroup")}
    queue_urls = {q.stack.ref(q.logical_id) for q in job_queues(root)}
    for pool in config.pools:
        if pool.group_name not in groups:
            violations.append(f"pool {pool.name}: group {pool.group_name} is not one of {sorted(groups)}")
        violations += [
            f"pool {pool.name}: queue {q.name} has url {q.url}, no job queue of the stack"
            for q in pool.queues
            if q.url not in queue_urls
        ]
    configured = {q.url for p in config.pools for q in p.queues}
    # A pool in the target-tracking ScalingMode is sized by EC2 target tracking, not by the scaler.
    tracked = {id(p.stack) for p in of_type(root, "AWS::AutoScaling::ScalingPolicy")}
    tracked_urls = {q.stack.ref(q.logical_id) for q in job_queues(root) if id(q.stack.parent) in tracked}
    violations += [f"job queue {u} is in no pool" for u in sorted(queue_urls - configured - tracked_urls)]
    return violations


def scaler_environment(root: Stack) -> dict[str, str]:
    (function,) = [f for f in of_type(root, "AWS::Lambda::Function") if f.logical_id == SCALER]
    variables: dict[str, str] = function.properties["Environment"]["Variables"]
    return variables


# --- samconfig.toml -------------------------------------------------------------------------------
def load_samconfig(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        return tomllib.load(file)


def environments(samconfig: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The deploy parameters of each environment (the tables with a `deploy` section)."""
    return {
        name: table["deploy"]["parameters"]
        for name, table in samconfig.items()
        if isinstance(table, dict) and "deploy" in table
    }


def parameter_overrides(deploy: dict[str, Any]) -> dict[str, str]:
    """`parameter_overrides` as SAM reads it: a list of Key=Value, or one space-separated string."""
    overrides = deploy.get("parameter_overrides", [])
    items = overrides if isinstance(overrides, list) else overrides.split()
    return dict(item.split("=", 1) for item in items)


def samconfig_violations(root_template: dict[str, Any], samconfig: dict[str, Any]) -> list[str]:
    """Each environment sets every parameter without a default, nothing unknown, and deploys safely."""
    declared = root_template["Parameters"]
    required = {name for name, p in declared.items() if "Default" not in p}
    violations = []
    envs = environments(samconfig)
    for expected in ("dev", "staging", "prod"):
        if expected not in envs:
            violations.append(f"samconfig: no {expected} environment")
    for env, deploy in envs.items():
        overrides = parameter_overrides(deploy)
        violations += [f"{env}: sets unknown parameter {n}" for n in sorted(set(overrides) - set(declared))]
        violations += [f"{env}: misses required parameter {n}" for n in sorted(required - set(overrides))]
        if overrides.get("EnvironmentName") != env:
            violations.append(f"{env}: EnvironmentName is {overrides.get('EnvironmentName')!r}")
        for key in ("stack_name", "region"):
            if not deploy.get(key):
                violations.append(f"{env}: no {key}")
        capabilities = str(deploy.get("capabilities", "")).split()
        violations += [
            f"{env}: lacks {c}" for c in ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND") if c not in capabilities
        ]
    if envs.get("prod", {}).get("confirm_changeset") is not True:
        violations.append("prod: confirm_changeset must be true")
    return violations


def pretty(violations: list[str]) -> str:
    return json.dumps(violations, indent=1)

"""`sam local invoke` gives every function an environment its settings accept, naming the target's resources.

SAM CLI's own resolution (`SamFunctionProvider`, `LocalLambdaRunner._make_env_vars`: what `sam local
invoke` hands the container, no Docker needed) runs in .venv-tools, where SAM CLI lives, on
template.yaml with the file `queue-scaler env-vars` wrote for each target:

- the running local cloud: every table, parameter, topic and group the settings name exists there,
  and the endpoint is the cloud's, as a container reaches it;
- a described deployed stack (the `dev` environment of samconfig.toml, as devkit/stackmodel.py
  instantiates it from the transformed templates; CloudFormation's answers stubbed with botocore's
  Stubber, which checks them against the API's shapes): the names are the stack's.

Without `--env-vars`, the settings refuse, naming each unresolved variable and `--env-vars`.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from devkit import template
from devkit.cli import main
from devkit.commands.envvars import CONTAINER_HOST, stack_env_file
from devkit.localcloud import control as local_command
from devkit.localcloud.control import down, up
from devkit.stackmodel import ROOT, Stack, root_stack
from queue_scaler import settings as qs_settings
from queue_scaler.lifecycle.domain.lifecycle import ActionKind
from queue_scaler.settings import (
    DlqRefundSettings,
    FunctionSettings,
    LifecycleSettings,
    MetricsSettings,
    ScalerSettings,
)

from .invariants import environments, parameter_overrides

TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
#: Each function's settings model: what its handler loads at cold start.
MODELS: dict[str, type[FunctionSettings]] = {
    "ScalerFunction": ScalerSettings,
    "LifecycleFunction": LifecycleSettings,
    "MetricsFunction": MetricsSettings,
    "DlqRefundFunction": DlqRefundSettings,
}

#: SAM CLI's resolution, as `sam local invoke` does it: one job per target, each with its region
#: (samconfig's or --region) and the credentials of the shell SAM CLI runs in.
SAM_RESOLUTION = """
import json, os, sys
from samcli.commands.local.cli_common.invoke_context import InvokeContext
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

template, jobs = sys.argv[1], json.loads(sys.argv[2])
out = {}
for label, job in jobs.items():
    os.environ.update(job["credentials"])
    stacks, _ = SamLocalStackProvider.get_stacks(template, global_parameter_overrides={"AWS::Region": job["region"]})
    provider = SamFunctionProvider(stacks, ignore_code_extraction_warnings=True)
    values = InvokeContext._get_env_vars_value(job["env_vars"]) if job["env_vars"] else None
    runner = LocalLambdaRunner(
        local_runtime=None, function_provider=provider, cwd=os.getcwd(), real_path=os.getcwd(),
        aws_region=job["region"], env_vars_values=values,
    )
    out[label] = {f.name: runner._make_env_vars(f).resolve() for f in provider.get_all()}
print(json.dumps(out))
"""

DEV = "dev"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}


def sam_resolve(jobs: Mapping[str, Mapping[str, Any]], tmp: Path) -> dict[str, dict[str, dict[str, str]]]:
    """SAM CLI's environment of every function, per job."""
    if not TOOLS_PYTHON.exists():
        pytest.fail(f"{TOOLS_PYTHON} is missing: run `make tools`")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    env.update({"SAM_CLI_TELEMETRY": "0", "__SAM_CLI_APP_DIR": str(tmp / "sam-app-dir")})
    completed = subprocess.run(
        [str(TOOLS_PYTHON), "-c", SAM_RESOLUTION, str(ROOT / "template.yaml"), json.dumps(jobs)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    resolved: dict[str, dict[str, dict[str, str]]] = json.loads(completed.stdout)
    return resolved


def load_settings(model: type[FunctionSettings], environment: Mapping[str, str]) -> FunctionSettings:
    """`model` loaded from exactly `environment`, as the handler loads it in its container."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environment)
        return model()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- the targets ----------------------------------------------------------------------------------
def _deployed(templates: dict[str, Any], samconfig: dict[str, Any]) -> Stack:
    deploy = environments(samconfig)[DEV]
    return root_stack(templates, parameter_overrides(deploy), deploy["stack_name"], deploy["region"])


def _stack_arn(stack: Stack) -> str:
    return (
        f"arn:aws:cloudformation:{stack.pseudo['AWS::Region']}:{stack.pseudo['AWS::AccountId']}:"
        f"stack/{stack.pseudo['AWS::StackName']}/{uuid.uuid5(uuid.NAMESPACE_URL, stack.path)}"
    )


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _description(stack: Stack) -> dict[str, Any]:
    """DescribeStacks' answer for `stack`: its parameters and outputs as CloudFormation reports them."""
    return {
        "Stacks": [
            {
                "StackName": stack.pseudo["AWS::StackName"],
                "StackId": _stack_arn(stack),
                "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                "StackStatus": "UPDATE_COMPLETE",
                "Parameters": [{"ParameterKey": k, "ParameterValue": _text(v)} for k, v in stack.parameters.items()],
                "Outputs": [{"OutputKey": k, "OutputValue": _text(v)} for k, v in stack.outputs().items()],
            }
        ]
    }


def stubbed_cloudformation(root: Stack) -> tuple[Any, Stubber]:
    """A CloudFormation client answering, in the order `env-vars --stack` asks, what the deployed
    stack `root` would: the root's description, its resources (one page per 100, as ListStackResources
    pages), then each nested stack's description."""
    client = boto3.client(
        "cloudformation",
        region_name=root.pseudo["AWS::Region"],
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    stubber = Stubber(client)
    name = root.pseudo["AWS::StackName"]
    stubber.add_response("describe_stacks", _description(root), {"StackName": name})
    summaries = []
    nested = []
    for logical_id, resource in root.resources().items():
        if resource.type == "AWS::CloudFormation::Stack":
            physical = _stack_arn(root.child(logical_id))
            nested.append(root.child(logical_id))
        else:
            physical = root.resource_ref(resource)
        summaries.append(
            {
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": physical,
                "ResourceType": resource.type,
                "LastUpdatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                "ResourceStatus": "UPDATE_COMPLETE",
            }
        )
    pages = [summaries[i : i + 100] for i in range(0, len(summaries), 100)]
    for index, page in enumerate(pages):
        request = {"StackName": _stack_arn(root)} | ({"NextToken": f"page-{index}"} if index else {})
        answer: dict[str, Any] = {"StackResourceSummaries": page}
        if index + 1 < len(pages):
            answer["NextToken"] = f"page-{index + 1}"
        stubber.add_response("list_stack_resources", answer, request)
    for child in nested:
        stubber.add_response("describe_stacks", _description(child), {"StackName": _stack_arn(child)})
    return client, stubber


@pytest.fixture(scope="module")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A running local cloud (its schedules off: nothing changes under the test). Its start is not what
    this test judges: on a busy 2-core machine it may take longer than `local up`'s minute."""
    state_dir = tmp_path_factory.mktemp("sam-env") / "cloud"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_command, "START_TIMEOUT", 240.0)
        state = up(state_dir, schedule_seconds=0, reconcile=False)
    try:
        yield state_dir, state
    finally:
        down(state_dir)


@pytest.fixture(scope="module")
def resolved(
    templates: dict[str, Any], samconfig: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, dict[str, str]]]:
    """SAM CLI's environment of every function, with samconfig's region: without --env-vars, and with
    the deployed stack's file (one SAM CLI process for both)."""
    tmp = tmp_path_factory.mktemp("sam-env-files")
    deployed = _deployed(templates, samconfig)
    client, stubber = stubbed_cloudformation(deployed)
    with stubber:
        stack_file = tmp / "stack.json"
        stack_file.write_text(json.dumps(stack_env_file(client, deployed.pseudo["AWS::StackName"])))
        stubber.assert_no_pending_responses()
    region = environments(samconfig)[DEV]["region"]
    return sam_resolve(
        {
            "none": {"env_vars": None, "region": region, "credentials": DUMMY_CREDENTIALS},
            "stack": {"env_vars": str(stack_file), "region": region, "credentials": DUMMY_CREDENTIALS},
        },
        tmp,
    )


@pytest.fixture(scope="module")
def resolved_locally(
    local_cloud: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, str]]:
    """SAM CLI's environment of every function with the local cloud's file, its region and its key."""
    tmp = tmp_path_factory.mktemp("sam-env-local")
    state_dir, state = local_cloud
    local_file = tmp / "local.json"
    assert main(["env-vars", "--local", "--state-dir", str(state_dir), "-o", str(local_file)]) == 0
    job = {"env_vars": str(local_file), "region": state["region"], "credentials": LOCAL_CREDENTIALS}
    return sam_resolve({"local": job}, tmp)["local"]


# --- the tests ------------------------------------------------------------------------------------
def test_given_the_template_then_sam_cli_resolves_every_function_and_the_settings_know_each_one(
    resolved: dict[str, dict[str, dict[str, str]]],
) -> None:
    assert set(resolved["none"]) == set(template.functions(template.load())) == set(MODELS)


def test_given_no_env_vars_when_settings_load_then_each_function_refuses_naming_the_variables_and_env_vars(
    resolved: dict[str, dict[str, dict[str, str]]],
) -> None:
    for function, model in MODELS.items():
        environment = resolved["none"][function]
        with pytest.raises(ValidationError) as refused:
            load_settings(model, environment)
        message = str(refused.value)
        assert "--env-vars" in message and "queue-scaler env-vars" in message, message
        unresolved = {
            name for name, value in environment.items() if qs_settings.unresolved_reference(name, value) is not None
        }
        assert unresolved, f"{function}: SAM CLI resolved every reference; this test no longer tests anything"
        for name in unresolved:
            assert name in message, f"{function}: the refusal does not name {name}: {message}"


def test_given_the_local_clouds_env_vars_then_every_functions_settings_name_the_clouds_resources(
    resolved_locally: dict[str, dict[str, str]], local_cloud: tuple[Path, dict[str, Any]]
) -> None:
    _state_dir, state = local_cloud
    endpoint = state["endpoint_url"]
    session = boto3.session.Session(
        region_name=state["region"],
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    ssm = session.client("ssm", endpoint_url=endpoint)
    sns = session.client("sns", endpoint_url=endpoint)
    autoscaling = session.client("autoscaling", endpoint_url=endpoint)
    port = endpoint.rsplit(":", 1)[1]
    for function, model in MODELS.items():
        environment = resolved_locally[function]
        # What the container's clients use: the cloud's endpoint, as a container reaches it, its
        # region and its credentials (from SAM CLI's own shell and --region).
        assert environment["AWS_ENDPOINT_URL"] == f"http://{CONTAINER_HOST}:{port}", function
        assert environment["AWS_REGION"] == state["region"] and environment["AWS_ACCESS_KEY_ID"] == "local"
        loaded = load_settings(model, environment)
        for table in _tables(loaded):
            dynamodb.describe_table(TableName=table)  # raises ResourceNotFoundException if not the cloud's
        if isinstance(loaded, ScalerSettings):
            json.loads(ssm.get_parameter(Name=loaded.pool_config_parameter)["Parameter"]["Value"])
        if isinstance(loaded, MetricsSettings):
            # Its own parameter (every pool, whoever sizes it), not the scaler's.
            json.loads(ssm.get_parameter(Name=loaded.measured_pools_parameter)["Parameter"]["Value"])
        if isinstance(loaded, DlqRefundSettings):
            sns.get_topic_attributes(TopicArn=loaded.notice_topic_arn)
        if isinstance(loaded, LifecycleSettings):
            groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=sorted(loaded.group_names))
            assert {g["AutoScalingGroupName"] for g in groups["AutoScalingGroups"]} == loaded.group_names
            assert len(loaded.group_names) == len(template.pools(template.load()))
            assert set(loaded.pool_timings) == loaded.group_names


def test_given_a_deployed_stacks_env_vars_then_every_functions_settings_name_the_stacks_resources(
    resolved: dict[str, dict[str, dict[str, str]]], templates: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    deployed = _deployed(templates, samconfig)
    pools = [deployed.child(p.logical_id) for p in template.pools(template.load())]
    groups = {str(pool.outputs()["GroupName"]): pool for pool in pools}
    loaded = {function: load_settings(model, resolved["stack"][function]) for function, model in MODELS.items()}
    scaler, lifecycle, metrics, refund = (
        loaded["ScalerFunction"],
        loaded["LifecycleFunction"],
        loaded["MetricsFunction"],
        loaded["DlqRefundFunction"],
    )
    assert isinstance(scaler, ScalerSettings) and isinstance(lifecycle, LifecycleSettings)
    assert isinstance(metrics, MetricsSettings) and isinstance(refund, DlqRefundSettings)
    assert scaler.pool_config_parameter == deployed.ref("PoolConfigParameter")
    assert metrics.measured_pools_parameter == deployed.ref("MetricsPoolConfigParameter")
    assert metrics.target_tracking_pools == {str(p.outputs()["TrackedName"]) for p in pools} - {""}
    assert metrics.dead_letter_suffix == "-dlq"
    assert scaler.history_table == deployed.ref("HistoryTable")
    assert scaler.actions_table == lifecycle.actions_table == deployed.ref("LifecycleActionsTable")
    assert lifecycle.group_names == set(groups)
    # Each group drains for its pool's own DrainSeconds, and heartbeats are planned on a terminate hook
    # timeout above the reconciler's period and no longer than the pool's real hook (since the
    # lifecycle merge, one shared timeout: POOL_TIMINGS no longer reads the pools' outputs).
    assert set(lifecycle.pool_timings) == set(groups)
    policy = lifecycle.policy()
    for group, pool in groups.items():
        assert policy.drain_seconds_for(group) == int(pool.parameters["DrainSeconds"])
        planned = policy.hook_timeout(ActionKind.TERMINATE, group)
        assert lifecycle.reconcile_period_seconds < planned <= int(pool.outputs()["TerminateHookTimeoutSeconds"])
    assert refund.ledger_table == deployed.ref("LedgerTable")
    assert refund.parking_table == deployed.ref("ParkingTable")
    assert refund.notice_topic_arn == deployed.ref("NoticeTopic")
    environments_named = {scaler.environment, lifecycle.environment, metrics.environment, refund.environment}
    assert environments_named == {deployed.parameters["EnvironmentName"]}
    for function in MODELS:
        # AWS's endpoints: the declared AWS_ENDPOINT_URL stays empty, and botocore ignores an empty one.
        assert resolved["stack"][function]["AWS_ENDPOINT_URL"] == "", function


def test_given_the_template_then_the_settings_refuse_exactly_the_logical_ids_its_environments_reference() -> None:
    loaded = template.load()
    referenced: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "Ref" and not str(item).startswith("AWS::"):
                    referenced.add(str(item))
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for function in template.functions(loaded):
        walk(template.function(loaded, function).environment)
    assert referenced == qs_settings.TEMPLATE_REFERENCES


def _tables(loaded: FunctionSettings) -> list[str]:
    names = [getattr(loaded, field) for field in type(loaded).model_fields if field.endswith("_table")]
    return [name for name in names if name is not None]

"""`queue-scaler env-vars --local | --stack NAME`: a `sam local invoke --env-vars` file for a target.

Without one, `sam local invoke` gives a function the logical id for each `!Ref` to a resource
(`LEDGER_TABLE=LedgerTable`) and leaves `${Pool.Outputs.GroupName}` in each `!Sub` of a nested
stack's output: the settings refuse both. This command resolves every function's environment, as
template.yaml declares it, for one target:

- `--local`: the running local cloud's names, and its endpoint as a container reaches it
  (`AWS_ENDPOINT_URL` on `host.docker.internal`, `--host` to change it): the same environment
  `queue-scaler invoke` gives the handler in-process (devkit/localcloud/functions.py). Its region and
  test credentials are SAM CLI's own settings, not the file's: the command prints them.
- `--stack NAME`: a deployed stack's physical names, read from CloudFormation (its parameters, its
  resources, its nested pool stacks' outputs).

The file holds one object per function logical id, as SAM CLI reads it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: How a container reaches its host's loopback on Docker Desktop.
CONTAINER_HOST = "host.docker.internal"


class TargetNotFound(Exception):
    """The target (local cloud or stack) cannot be read; the message says why and what to do."""


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler env-vars` (devkit/cli.py names the command and its help)."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--local", action="store_true", help="the running local cloud (`queue-scaler local up`)")
    target.add_argument("--stack", metavar="NAME", help="a deployed stack, e.g. queue-scaler-dev")
    parser.add_argument(
        "--state-dir", type=Path, help="with --local: the local cloud's state directory (default: the running one)"
    )
    parser.add_argument(
        "--host",
        default=CONTAINER_HOST,
        help=f"with --local: the local cloud's host as the function's container sees it (default {CONTAINER_HOST}; "
        "127.0.0.1 with `sam local invoke --docker-network host` on a Linux Docker engine)",
    )
    parser.add_argument("--region", help="with --stack: the stack's region (default: your AWS configuration's)")
    parser.add_argument("--endpoint-url", help="with --stack: a CloudFormation endpoint other than AWS's")
    parser.add_argument("-o", "--output", type=Path, help="write the file here (default: standard output)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devkit.localenv import LocalCloudNotRunning

    if args.local and (args.region or args.endpoint_url):
        print("queue-scaler env-vars: --region and --endpoint-url go with --stack", file=sys.stderr)
        return 2
    if args.stack and args.state_dir is not None:
        print("queue-scaler env-vars: --state-dir goes with --local", file=sys.stderr)
        return 2
    hint = None
    try:
        if args.local:
            env_file = local_env_file(args.state_dir, args.host)
            hint = local_invoke_hint(args.state_dir, str(args.output or "FILE"))
        else:
            env_file = _described_stack(args.stack, args.region, args.endpoint_url)
    except (LocalCloudNotRunning, TargetNotFound) as error:
        print(f"queue-scaler env-vars: {error}", file=sys.stderr)
        return 1
    text = json.dumps(env_file, indent=2, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}: {', '.join(sorted(env_file))}", file=sys.stderr)
    if hint is not None:
        print(f"run: {hint}", file=sys.stderr)
    return 0


def _described_stack(name: str, region: str | None, endpoint_url: str | None) -> dict[str, dict[str, str]]:
    """`stack_env_file` through AWS; no region, no credentials, a denied call or a lost connection
    is a TargetNotFound naming the stack and the cause."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint_url)
        return stack_env_file(client, name)
    except ClientError as error:
        raise TargetNotFound(f"cannot read stack {name}: {error.response['Error']['Message']}") from error
    except BotoCoreError as error:
        raise TargetNotFound(f"cannot read stack {name}: {error}") from error


def container_endpoint(endpoint_url: str, host: str) -> str:
    """`endpoint_url` (the local cloud's, on 127.0.0.1) with its host replaced by `host`."""
    parts = urlsplit(endpoint_url)
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit(parts._replace(netloc=netloc))


def local_env_file(state_dir: Path | None, host: str) -> dict[str, dict[str, str]]:
    """Every function's environment on the running local cloud, its endpoint reached from a container at `host`.

    The values are those `queue-scaler invoke` gives the handler (names, parameters, compressed time),
    for the variables the template declares: SAM CLI sets no other (devkit/localcloud/functions.py)."""
    from devkit import template
    from devkit.localcloud import functions
    from devkit.localcloud.control import read_state
    from devkit.localcloud.stack import LocalSettings
    from devkit.localenv import find_local_cloud

    target = find_local_cloud(state_dir)
    state = read_state(target.state_dir) or {}
    defaults = LocalSettings()
    settings = LocalSettings(
        stack=target.stack,
        region=target.region,
        schedule_seconds=float(state.get("schedule_seconds", defaults.schedule_seconds)),
        reconcile_schedule=bool(state.get("reconcile", defaults.reconcile_schedule)),
    )
    endpoint = {"AWS_ENDPOINT_URL": container_endpoint(target.endpoint_url, host)}
    loaded = template.load()
    found = {}
    for logical_id in template.functions(loaded):
        declared = template.function(loaded, logical_id).environment
        local = {**functions.environment(logical_id, settings), **endpoint}
        found[logical_id] = {name: value for name, value in local.items() if name in declared}
    return found


def local_invoke_hint(state_dir: Path | None, env_vars: str) -> str:
    """How to run `sam local invoke` with the local cloud's file: its credentials and region are the
    SAM CLI's own (an env-vars file cannot set them), so they go on its command line."""
    from devkit.localcloud.control import TEST_CREDENTIALS
    from devkit.localenv import find_local_cloud

    target = find_local_cloud(state_dir)
    credentials = " ".join(f"{name}={value}" for name, value in TEST_CREDENTIALS.items())
    return f"{credentials} sam local invoke FUNCTION -e EVENT --env-vars {env_vars} --region {target.region}"


def stack_refs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """What the template's references resolve to in the deployed stack `stack_name`: its parameters'
    values, its resources' physical ids, its nested stacks' outputs (`Pool.Outputs.Key`), and the
    pseudo parameters."""
    from botocore.exceptions import ClientError

    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise TargetNotFound(f"cannot describe stack {stack_name}: {error.response['Error']['Message']}") from error
    arn = stack["StackId"]  # arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID
    _, partition, _, region, account, _ = arn.split(":", 5)
    refs = {
        "AWS::StackName": stack["StackName"],
        "AWS::StackId": arn,
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": partition,
    }
    for parameter in stack.get("Parameters", []):
        refs[parameter["ParameterKey"]] = parameter.get("ResolvedValue", parameter["ParameterValue"])
    nested = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=arn):
        for resource in page["StackResourceSummaries"]:
            if "PhysicalResourceId" not in resource:
                continue  # not created (a condition left it out, or it failed)
            refs[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
            if resource["ResourceType"] == "AWS::CloudFormation::Stack":
                nested.append((resource["LogicalResourceId"], resource["PhysicalResourceId"]))
    for logical_id, nested_arn in nested:
        (child,) = cloudformation.describe_stacks(StackName=nested_arn)["Stacks"]
        for output in child.get("Outputs", []):
            refs[f"{logical_id}.Outputs.{output['OutputKey']}"] = output["OutputValue"]
    return refs


def stack_env_file(cloudformation: Any, stack_name: str) -> dict[str, dict[str, str]]:
    """Every function's environment in the deployed stack `stack_name`, from its CloudFormation description."""
    refs = stack_refs(cloudformation, stack_name)
    return resolved_functions(refs, f"stack {stack_name}")


def resolved_functions(refs: Mapping[str, str], where: str) -> dict[str, dict[str, str]]:
    """Each function's template environment with its references taken from `refs`."""
    from devkit import template

    loaded = template.load()
    found: dict[str, dict[str, str]] = {}
    for logical_id in template.functions(loaded):
        spec = template.function(loaded, logical_id)
        try:
            found[logical_id] = {name: template.resolve(value, refs) for name, value in spec.environment.items()}
        except template.UnresolvedReference as error:
            raise TargetNotFound(
                f"{logical_id}: {where} has no value for a reference of its environment ({error})"
            ) from error
    return found

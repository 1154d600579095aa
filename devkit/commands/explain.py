"""`queue-scaler explain`: observe real (or local) queues and groups, print what would be done, write nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError
from rich.table import Table

from devkit import output
from devkit.commands.common import add_aws_options
from devkit.configfile import load_file, load_parameter, localize_config
from devkit.localcloud import stack
from devkit.localcloud.stack import LocalSettings
from devkit.localenv import LocalCloudNotRunning, LocalCloudTarget, find_local_cloud
from queue_scaler import bootstrap
from queue_scaler.scaling.adapters.memory import NullMetrics
from queue_scaler.scaling.services.scaling import PoolOutcome
from queue_scaler.shared.errors import AwsCallError, ConfigError


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler explain` (devkit/cli.py names the command and its help)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help="configuration file (JSON or YAML: {pools: [...]})")
    source.add_argument("--parameter", help="SSM parameter holding the configuration (as the scaler reads it)")
    parser.add_argument(
        "--history-table", help="DynamoDB history table; without it, decisions ignore history (--local: the local one)"
    )
    # --local: also, by default, the local stack's configuration and history, and a --config naming
    # the dev stack is mapped to it.
    add_aws_options(parser)
    parser.add_argument(
        "--actions-table",
        help="the LifecycleFunction's actions table: instances it recorded as leaving count as the scaler "
        "counts them (--local: the local one)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        local = _use_local(args) if args.local else None
    except LocalCloudNotRunning as error:
        print(f"queue-scaler explain --local: {error}", file=sys.stderr)
        return 2
    if not (args.config or args.parameter):
        print("queue-scaler explain: give --config FILE or --parameter NAME (or --local)", file=sys.stderr)
        return 2
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if local is None and boto3.Session().get_credentials() is None:
        # Without this, every queue and group would read as unavailable: a setup problem, not the pools'.
        print(
            "queue-scaler explain: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY; against the local cloud, add --local)",
            file=sys.stderr,
        )
        return 2
    try:
        return _explain(args, local)
    except BotoCoreError as error:
        # No region, no credentials, an unreachable endpoint: say so plainly, without a traceback.
        hint = "" if args.local else " (against the local cloud, add --local)"
        print(f"queue-scaler explain: {error}{hint}", file=sys.stderr)
        return 2


def _use_local(args: argparse.Namespace) -> LocalCloudTarget:
    """Point this process at the running local cloud; default to its configuration and history."""
    target = find_local_cloud(args.state_dir)
    target.apply()
    args.endpoint_url = target.endpoint_url
    settings = LocalSettings(stack=target.stack, region=target.region)
    if not (args.config or args.parameter):
        args.parameter = stack.config_parameter(settings)
    if not args.history_table and not args.config:
        args.history_table = stack.history_table(settings)
    if not args.actions_table and not args.config:
        args.actions_table = stack.actions_table(settings)
    return target


def _explain(args: argparse.Namespace, local: LocalCloudTarget | None) -> int:
    try:
        config = load_file(args.config) if args.config else load_parameter(args.parameter, args.endpoint_url)
    except (ConfigError, AwsCallError) as error:
        print(f"queue-scaler explain: {error}", file=sys.stderr)
        return 2
    if local is not None:
        # examples/ names the dev stack's groups and queues; on the local cloud they carry its name.
        config = localize_config(config, local.stack)
    # The ScalerFunction's own service (bootstrap), so that explain decides exactly as the Lambda does.
    service = bootstrap.explain_service(NullMetrics(), args.history_table, args.actions_table, args.endpoint_url)
    try:
        outcomes = service.explain(config.pools, now=time.time())
    except AwsCallError as error:
        print(f"queue-scaler explain: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([o.as_dict() for o in outcomes], indent=2))
    else:
        print_table(outcomes)
    unread = unreadable_queues(outcomes)
    for line in unread:
        print(f"queue-scaler explain: {line}", file=sys.stderr)
    return 1 if unread or any(o.error for o in outcomes) else 0


def unreadable_queues(outcomes: list[PoolOutcome]) -> list[str]:
    """One line per queue a decision went without (a misspelt name, a deleted queue, access denied),
    naming the pool, the queue and why."""
    lines = []
    for outcome in outcomes:
        decision = outcome.decision
        if decision is None:
            continue  # the pool's own error is in the table
        for queue in decision.unavailable_queues:
            why = next((line for line in decision.explanation if line.startswith(f"{queue}:")), f"{queue}: unavailable")
            lines.append(f"pool {outcome.pool}: queue {why}")
    return lines


def print_table(outcomes: list[PoolOutcome]) -> None:
    table = Table(title="queue-scaler explain (nothing was changed)", show_lines=True)
    for column in ("pool", "current", "desired", "limited by", "why"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        if outcome.decision is None:
            table.add_row(outcome.pool, "-", "-", "error", outcome.error or "")
            continue
        d = outcome.decision
        table.add_row(d.pool, str(d.current), str(d.desired), str(d.limited_by), "\n".join(d.explanation))
    output.console().print(table)

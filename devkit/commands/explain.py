"""`queue-scaler explain`: observe real (or local) queues and groups, print what would be done, write nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError
from rich.console import Console
from rich.table import Table

from devkit.configfile import load_file, load_parameter
from queue_scaler import bootstrap
from queue_scaler.adapters.memory import NullMetrics
from queue_scaler.errors import AwsCallError, ConfigError
from queue_scaler.services.scaling import PoolOutcome


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "explain", help="observe queues and groups, print each pool's decision and why (writes nothing)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="configuration file (JSON or YAML: {pools: [...]})")
    source.add_argument("--parameter", help="SSM parameter holding the configuration (as the scaler reads it)")
    parser.add_argument("--history-table", help="DynamoDB history table; without it, decisions ignore history")
    parser.add_argument(
        "--actions-table",
        help="the LifecycleFunction's actions table: instances it recorded as leaving count as the scaler counts them",
    )
    parser.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local cloud's http://127.0.0.1:PORT)")
    parser.add_argument("--region", help="AWS region (default: the AWS_REGION / AWS_DEFAULT_REGION setting)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    try:
        return _explain(args)
    except BotoCoreError as error:
        # No region, no credentials, an unreachable endpoint: say so plainly, without a traceback.
        print(f"queue-scaler explain: {error}", file=sys.stderr)
        return 2


def _explain(args: argparse.Namespace) -> int:
    try:
        config = load_file(args.config) if args.config else load_parameter(args.parameter, args.endpoint_url)
    except (ConfigError, AwsCallError) as error:
        print(f"queue-scaler explain: {error}", file=sys.stderr)
        return 2
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
    return 1 if any(o.error for o in outcomes) else 0


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
    Console(width=160).print(table)

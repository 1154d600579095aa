"""`queue-scaler submit`, `jobs show` and `credits deposit`: a product's side of the system (CONTRACTS.md section 6).

Thin over `queue_scaler.producer` and the ledger adapter: each command parses its arguments, points
the clients at AWS, an endpoint or the running local cloud, calls the library once and prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError
from pydantic import TypeAdapter, ValidationError

from devkit.commands.common import AwsTarget, TargetError, add_aws_options, aws_target
from devkit.configfile import load_file, load_parameter, localize_config
from queue_scaler.bootstrap import producer
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import JobRecord
from queue_scaler.credits.domain.refund import InvalidAmount
from queue_scaler.credits.domain.routing import Unroutable
from queue_scaler.producer import (
    JobIdConflict,
    Producer,
    SendUnknown,
    SubmissionInProgress,
    SubmitFailed,
    deposit_credits,
)
from queue_scaler.scaling.adapters.memory import NullMetrics
from queue_scaler.settings import ProducerSettings
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.errors import (
    AwsCallError,
    BalanceCapExceeded,
    ConfigError,
    InsufficientCredits,
    ReferenceTaken,
)
from queue_scaler.shared.jobs import JobId
from queue_scaler.shared.validation import describe_validation_error

EXIT_AWS = 1
EXIT_USAGE = 2
EXIT_CREDITS = 3
#: The job may have been sent (the send's answer was lost): its credits stay reserved; retry with its id.
EXIT_MAYBE_SENT = 4


class UsageError(Exception):
    """A bad argument, named in the message (exit 2)."""


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler submit`, `jobs` or `credits` (devkit/cli.py names them and their help)."""
    {"submit": _configure_submit, "jobs": _configure_jobs, "credits": _configure_credits}[command](parser)


def _configure_submit(submit: argparse.ArgumentParser) -> None:
    submit.add_argument("--kind", required=True, help="what the job does, e.g. video.transcode (picks the pool)")
    submit.add_argument("--plan", required=True, help="the user's plan (picks the pool's queue)")
    submit.add_argument("--user", required=True, help="who is charged")
    submit.add_argument("--credits", required=True, type=int, help="credits the job costs")
    submit.add_argument("--payload", default="{}", help="the job's parameters, a JSON object")
    submit.add_argument("--job-id", help="idempotency key: the same id submitted twice sends one message")
    source = submit.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help="pool configuration file (JSON or YAML)")
    source.add_argument("--parameter", help="SSM parameter holding the pool configuration (as the scaler reads it)")
    _common(submit)
    submit.set_defaults(run=lambda args: _guarded(args, _submit))


def _configure_jobs(jobs: argparse.ArgumentParser) -> None:
    jobs_actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = jobs_actions.add_parser("show", help="print one job from the ledger")
    show.add_argument("job_id", metavar="JOB_ID")
    show.add_argument("--json", action="store_true", help="one JSON object")
    _common(show)
    show.set_defaults(run=lambda args: _guarded(args, _show))


def _configure_credits(credits: argparse.ArgumentParser) -> None:
    credits_actions = credits.add_subparsers(dest="action", required=True, metavar="ACTION")
    deposit = credits_actions.add_parser("deposit", help="add credits to a user's balance, once per reference")
    deposit.add_argument("user", metavar="USER")
    deposit.add_argument("credits", metavar="CREDITS", type=int)
    deposit.add_argument("--reference", required=True, help="the purchase or grant; repeated, it changes nothing")
    _common(deposit)
    deposit.set_defaults(run=lambda args: _guarded(args, _deposit))


def _common(parser: argparse.ArgumentParser) -> None:
    add_aws_options(parser)
    parser.add_argument(
        "--ledger-table", help="the ledger's DynamoDB table (default: LEDGER_TABLE, or the local cloud's)"
    )


def _guarded(args: argparse.Namespace, command: Any) -> int:
    name = args.command if not getattr(args, "action", None) else f"{args.command} {args.action}"
    try:
        target = aws_target(args)
        if target.local:
            # As a product would run them: under the stack's ProducerPolicy, not as the admin.
            _as_local_producer(args)
        code: int = command(args, target)
    except (UsageError, ConfigError, TargetError) as error:
        print(f"queue-scaler {name}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (AwsCallError, BotoCoreError, SubmitFailed, SubmissionInProgress, ReferenceTaken) as error:
        print(f"queue-scaler {name}: {error}", file=sys.stderr)
        return EXIT_AWS
    return code


def _as_local_producer(args: argparse.Namespace) -> None:
    from devkit.localenv import LocalCloudNotRunning, find_local_cloud

    try:
        find_local_cloud(args.state_dir).apply_as_producer()
    except LocalCloudNotRunning as error:
        raise TargetError(str(error)) from error


def _settings() -> ProducerSettings:
    try:
        return ProducerSettings()
    except ValidationError as error:
        raise UsageError(_one_line("invalid settings", error)) from error


def _one_line(what: str, error: ValidationError) -> str:
    """A validation error on one line: each bad field named, with its rule."""
    return f"{what}: " + "; ".join(line.strip() for line in describe_validation_error(error).splitlines())


def _table(args: argparse.Namespace, target: AwsTarget, settings: ProducerSettings) -> str:
    table = args.ledger_table or settings.ledger_table
    if table is None and target.local:
        from devkit.localcloud import stack
        from devkit.localcloud.stack import LocalSettings

        table = stack.ledger_table(LocalSettings())
    if table is None:
        raise UsageError(
            "--ledger-table: give the ledger table (the stack's LedgerTableName output) or set LEDGER_TABLE"
        )
    return str(table)


def _producer(args: argparse.Namespace, target: AwsTarget) -> Producer:
    settings = _settings()
    table = _table(args, target, settings)
    parameter = getattr(args, "parameter", None) or settings.pool_config_parameter
    config_file = getattr(args, "config", None)
    if config_file is None and parameter is None and target.local:
        from devkit.localcloud import stack
        from devkit.localcloud.stack import LocalSettings

        parameter = stack.config_parameter(LocalSettings())
    if config_file is not None:
        config = load_file(config_file)
        if target.local_stack is not None:
            # As explain does: examples/ names the dev stack's queues; on the local cloud they carry its name.
            config = localize_config(config, target.local_stack)
    elif parameter is not None:
        config = load_parameter(parameter, target.endpoint_url)
    else:
        raise UsageError(
            "--config or --parameter: the pool configuration routes the job (or set POOL_CONFIG_PARAMETER)"
        )
    return producer(
        ledger_table=table,
        config=config,
        metrics=NullMetrics(),
        policy=settings.policy(),
        limits=settings.limits(),
        endpoint_url=target.endpoint_url,
    )


def _submit(args: argparse.Namespace, target: AwsTarget) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError as error:
        raise UsageError(f"--payload is not JSON: {error}") from error
    if not isinstance(payload, dict):
        raise UsageError("--payload must be a JSON object")
    service = _producer(args, target)
    try:
        submission = service.submit(
            user_id=args.user,
            plan=args.plan,
            kind=args.kind,
            credits=args.credits,
            payload=payload,
            job_id=args.job_id,
            now=datetime.now(UTC),
        )
    except ValidationError as error:
        raise UsageError(_one_line("invalid job", error)) from error
    except (InvalidAmount, Unroutable, JobIdConflict) as error:
        raise UsageError(str(error)) from error
    except InsufficientCredits as error:
        print(f"queue-scaler submit: insufficient credits: {error}; nothing was sent", file=sys.stderr)
        return EXIT_CREDITS
    except SendUnknown as error:
        print(f"queue-scaler submit: {error}", file=sys.stderr)
        return EXIT_MAYBE_SENT
    print(json.dumps(submission.as_dict()))
    return 0


def _deposit(args: argparse.Namespace, target: AwsTarget) -> int:
    settings = _settings()
    limits = settings.limits()
    ledger = DynamoLedger(
        _table(args, target, settings), clients.dynamodb(target.endpoint_url), balance_cap=limits.balance_cap
    )
    try:
        account = deposit_credits(
            ledger, limits, user_id=args.user, credits=args.credits, reference=args.reference, now=datetime.now(UTC)
        )
    except ValidationError as error:
        raise UsageError(_one_line("invalid deposit", error)) from error
    except (InvalidAmount, BalanceCapExceeded) as error:
        raise UsageError(str(error)) from error
    print(json.dumps({"user_id": args.user, "balance": account.balance}))
    return 0


def _show(args: argparse.Namespace, target: AwsTarget) -> int:
    try:
        TypeAdapter(JobId).validate_python(args.job_id)
    except ValidationError as error:
        raise UsageError("job_id: " + error.errors()[0]["msg"]) from error
    table = _table(args, target, _settings())
    job = DynamoLedger(table, clients.dynamodb(target.endpoint_url)).job(args.job_id)
    if job is None:
        print(f"queue-scaler jobs show: no job {args.job_id} in the ledger", file=sys.stderr)
        return EXIT_AWS
    shown = job_view(job)
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    print(f"job {job.job_id}: {shown['outcome']}")
    print(f"  user {job.user_id}, plan {job.plan}, kind {job.kind}, credits {job.credits}, send {shown['send']}")
    for attempt in shown["attempts"]:
        reason = f" ({attempt['reason']})" if attempt.get("reason") else ""
        print(f"  {attempt['at']}  {attempt['outcome']}{reason}")
    return 0


def job_view(job: JobRecord) -> dict[str, Any]:
    """The job as `jobs show --json` prints it (CONTRACTS.md section 6)."""
    return {
        "job_id": job.job_id,
        "user_id": job.user_id,
        "plan": job.plan,
        "kind": job.kind,
        "credits": job.credits,
        "send": str(job.send_state),
        "attempts": [
            {"at": a.at.isoformat(), "outcome": str(a.outcome)} | ({"reason": a.reason} if a.reason else {})
            for a in job.attempts
        ],
        "outcome": str(job.outcome),
        "returns": job.returns,
        "refunded": job.refunded,
    }

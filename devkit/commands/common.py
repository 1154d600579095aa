"""Helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path


def read_text(path: str) -> str:
    """A file's text, or standard input for '-'."""
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


#: Where `queue-scaler local up` keeps its state unless told otherwise.
LOCAL_STATE_DIR = Path(".localcloud")


class TargetError(Exception):
    """`--local` was asked for but no local cloud runs (the message says how to start one)."""


@dataclass(frozen=True)
class AwsTarget:
    """Where a command's AWS calls go: an endpoint (None: AWS itself) and whether it is the local cloud."""

    endpoint_url: str | None
    local: bool


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """--endpoint-url, --region and --local (CONTRACTS.md section 6), for any command that calls AWS."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoint-url", help="AWS endpoint (e.g. an emulator's http://127.0.0.1:PORT)")
    where.add_argument(
        "--local",
        nargs="?",
        const=LOCAL_STATE_DIR,
        type=Path,
        metavar="STATE_DIR",
        help=f"the running local cloud (`queue-scaler local up`; state in {LOCAL_STATE_DIR} unless given)",
    )
    parser.add_argument("--region", help="AWS region (default: the AWS_REGION / AWS_DEFAULT_REGION setting)")


def aws_target(args: argparse.Namespace) -> AwsTarget:
    """Apply the AWS options to this process: the local cloud's endpoint, region and test credentials
    for --local, the region for --region; raises TargetError when --local finds no local cloud."""
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if args.local is None:
        return AwsTarget(args.endpoint_url, local=False)
    from devkit.commands.local import read_state
    from devkit.localcloud.stack import LocalSettings

    state = read_state(args.local)
    if state is None:
        raise TargetError(f"no local cloud runs in {args.local} (start it with `queue-scaler local up`)")
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": args.region or LocalSettings().region,
            # The emulator's test credentials: never a real account's.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    return AwsTarget(str(state["endpoint_url"]), local=True)

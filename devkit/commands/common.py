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


class TargetError(Exception):
    """`--local` was asked for but no local cloud runs (the message says how to start one)."""


@dataclass(frozen=True)
class AwsTarget:
    """Where a command's AWS calls go: an endpoint (None: AWS itself) and, for the local cloud, its stack's name."""

    endpoint_url: str | None
    local_stack: str | None = None

    @property
    def local(self) -> bool:
        return self.local_stack is not None


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """--endpoint-url, --region, --local and --state-dir (docs/contracts.md section 6), for any command
    that calls AWS: the same options, meaning the same, on every command."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoint-url", help="AWS endpoint (e.g. an emulator's http://127.0.0.1:PORT)")
    where.add_argument(
        "--local",
        action="store_true",
        help="the running local cloud (`queue-scaler local up`'s or `make demo`'s): its endpoint, region "
        "and test credentials",
    )
    parser.add_argument(
        "--state-dir", type=Path, help="with --local: the local cloud's state directory (default: the running one)"
    )
    parser.add_argument("--region", help="AWS region (default: the AWS_REGION / AWS_DEFAULT_REGION setting)")


def aws_target(args: argparse.Namespace) -> AwsTarget:
    """Apply the AWS options to this process: the local cloud's endpoint, region and test credentials
    for --local, the region for --region; raises TargetError when --local finds no local cloud."""
    from devkit.localenv import LocalCloudNotRunning, find_local_cloud

    if args.state_dir is not None and not args.local:
        raise TargetError("--state-dir selects a local cloud: give --local with it")
    if args.local:
        try:
            target = find_local_cloud(args.state_dir)
        except LocalCloudNotRunning as error:
            raise TargetError(str(error)) from error
        target.apply()
        if args.region:
            os.environ["AWS_DEFAULT_REGION"] = args.region
        return AwsTarget(target.endpoint_url, local_stack=target.stack)
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    return AwsTarget(args.endpoint_url)

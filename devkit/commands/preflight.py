"""`queue-scaler preflight --config-env ENV`: list what the account lacks before `sam deploy` (reads only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botocore.exceptions import NoCredentialsError, NoRegionError

from devkit.lambdas import ROOT


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler preflight` (devkit/cli.py names the command and its help)."""
    parser.add_argument("--config-env", required=True, help="the samconfig.toml environment: dev, staging, prod")
    parser.add_argument("--samconfig", type=Path, default=ROOT / "samconfig.toml", help="default: the checkout's")
    parser.add_argument("--region", help="overrides the environment's region")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devkit import preflight

    try:
        env = preflight.load_environment(args.config_env, args.samconfig, args.region)
        findings = preflight.run(env)
    except preflight.PreflightError as error:
        print(f"queue-scaler preflight: {error}", file=sys.stderr)
        return 2
    except (NoCredentialsError, NoRegionError) as error:
        print(f"queue-scaler preflight: {error}: configure AWS credentials (AWS_PROFILE, ...)", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding.line())
    print(preflight.summary(findings, env))
    return 1 if preflight.gaps(findings) else 0

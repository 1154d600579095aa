"""`queue-scaler invoke FUNCTION EVENT_FILE`: a function's handler, in-process, against the local cloud.

What `sam local invoke` does, without Docker (CONTRACTS.md section 2): the template's handler and
environment, references resolved to the local cloud's resources; the running local cloud (from
`queue-scaler local up` or `make demo`; `--local` requires one), a fresh one, or `--endpoint-url`.
Against the local cloud the sample's `dev` stack names, and instance ids it does not have, are
mapped to its own (devkit/localenv.py). The handler's logs go to standard error, its return value
to standard output as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from devkit import emf
from devkit.commands.local import down, find_running, up
from devkit.lambdas import LocalContext
from devkit.localcloud import functions
from devkit.localcloud.stack import LocalSettings
from devkit.localenv import TEST_CREDENTIALS, LocalCloudNotRunning, find_local_cloud, localize_event
from devkit.template import UnresolvedReference


class UsageError(Exception):
    """A bad argument or event file: exit 2, naming it."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("invoke", help="run a template function's handler on an event, against the local cloud")
    parser.add_argument("function", metavar="FUNCTION", help="the function's logical id, e.g. ScalerFunction")
    parser.add_argument("event", metavar="EVENT_FILE", type=Path, help="the event (JSON), e.g. events/scaler/...")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--local", action="store_true", help="the running local cloud (an error when none runs)")
    target.add_argument("--endpoint-url", help="AWS endpoint to use instead of the local cloud")
    parser.add_argument("--state-dir", type=Path, help="the local cloud's state directory (default: the running one)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="override an environment variable"
    )
    parser.set_defaults(run=run)


def read_event(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read event file {path}: {error.strerror}") from error
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"event file {path} is not valid JSON: {error}") from error


def parse_overrides(items: list[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--env {item}: expected NAME=VALUE")
        overrides[name] = value
    return overrides


@contextlib.contextmanager
def _endpoint(args: argparse.Namespace, event: Any) -> Iterator[tuple[str, Any]]:
    """The endpoint to invoke against (given, running, or a fresh local cloud for this invocation),
    and the event as it should act there."""
    if args.endpoint_url:
        yield args.endpoint_url, event
        return
    if args.local or find_running(args.state_dir) is not None:
        target = find_local_cloud(args.state_dir)
        yield target.endpoint_url, localize_event(event, target)
        return
    with tempfile.TemporaryDirectory(prefix="queue-scaler-invoke-") as fresh:
        try:
            up(Path(fresh))
            target = find_local_cloud(Path(fresh))
            yield target.endpoint_url, localize_event(event, target)
        finally:
            down(Path(fresh))


def run(args: argparse.Namespace) -> int:
    settings = LocalSettings()
    try:
        event = read_event(args.event)
        env = functions.environment(args.function, settings, parse_overrides(args.env))
    except (UsageError, KeyError, UnresolvedReference) as error:
        print(f"queue-scaler invoke: {str(error).strip(chr(39))}", file=sys.stderr)
        return 2
    try:
        with _endpoint(args, event) as (endpoint, local_event):
            env.update(
                {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": settings.region, "AWS_REGION": settings.region}
            )
            env.update(TEST_CREDENTIALS)
            # Logs and EMF lines go to standard error, as `sam local invoke` shows them apart from the result.
            output = emf.Tee(sys.stderr)
            with contextlib.redirect_stdout(output):
                module, spec = functions.load(args.function, env)
                handler = getattr(module, spec.handler)
                context = LocalContext(timeout_seconds=spec.timeout, function_name=args.function)
                result = handler(local_event, context)
            # As CloudWatch Logs turns a function's EMF lines into metrics.
            # (functions.load applied `env`, so this client has the local endpoint's test credentials.)
            emf.publish(output.lines, boto3.client("cloudwatch", region_name=settings.region, endpoint_url=endpoint))
    except LocalCloudNotRunning as error:
        print(f"queue-scaler invoke: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        # The handler raised (or the local cloud could not start): exit 1, as a failed invocation.
        traceback.print_exc()
        print(f"queue-scaler invoke: {args.function} raised {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from devkit import emf
from devkit.lambdas import LocalContext
from devkit.localcloud import functions
from devkit.localcloud.control import TEST_CREDENTIALS, LocalCloudFailed, down, find_running, up
from devkit.localcloud.stack import LocalSettings
from devkit.localenv import LocalCloudNotRunning, find_local_cloud, localize_event
from devkit.template import UnresolvedReference


class UsageError(Exception):
    """A bad argument or event file: exit 2, naming it."""


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler invoke` (devkit/cli.py names the command and its help)."""
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


@dataclass(frozen=True)
class Endpoint:
    """Where the invocation runs, the event as it should act there, and how often that local cloud's
    own scaler schedule ticks beside it (0: never, or not a local cloud)."""

    url: str
    event: Any
    schedule_seconds: float = 0.0


@contextlib.contextmanager
def _endpoint(args: argparse.Namespace, event: Any) -> Iterator[Endpoint]:
    """The endpoint to invoke against (given, running, or a fresh local cloud for this invocation)."""
    if args.endpoint_url:
        yield Endpoint(args.endpoint_url, event)
        return
    running = find_running(args.state_dir)
    if args.local or running is not None:
        target = find_local_cloud(args.state_dir)
        schedule = float(running[1].get("schedule_seconds", 0)) if running is not None else 0.0
        yield Endpoint(target.endpoint_url, localize_event(event, target), schedule)
        return
    with tempfile.TemporaryDirectory(prefix="queue-scaler-invoke-") as fresh:
        try:
            # Its schedule off: in a cloud started for one invocation, only that invocation scales.
            up(Path(fresh), schedule_seconds=0)
            target = find_local_cloud(Path(fresh))
            yield Endpoint(target.endpoint_url, localize_event(event, target))
        finally:
            down(Path(fresh))


def concurrent_tick_note(function: str, endpoint: Endpoint, lines: list[str]) -> str | None:
    """What to tell the user when the scaler's invocation stood down for the local cloud's own
    scheduled tick: its warning says "another tick", and on a machine with one `invoke` running,
    that other tick is the local cloud's schedule, not a second invocation of theirs."""
    if function != "ScalerFunction" or not endpoint.schedule_seconds:
        return None
    if not any("ConcurrentTicks" in line for line in lines):
        return None
    return (
        f"the other tick was the local cloud's own scaler schedule (every {endpoint.schedule_seconds:g} s), "
        "which runs beside this invocation as the rule does on AWS; for your invocations alone: "
        "queue-scaler local down && queue-scaler local up --schedule-seconds 0"
    )


def run(args: argparse.Namespace) -> int:
    settings = LocalSettings()
    try:
        event = read_event(args.event)
        env = functions.environment(args.function, settings, parse_overrides(args.env))
    except (UsageError, KeyError, UnresolvedReference) as error:
        print(f"queue-scaler invoke: {str(error).strip(chr(39))}", file=sys.stderr)
        return 2
    try:
        with _endpoint(args, event) as endpoint:
            env.update(
                {"AWS_ENDPOINT_URL": endpoint.url, "AWS_DEFAULT_REGION": settings.region, "AWS_REGION": settings.region}
            )
            env.update(TEST_CREDENTIALS)
            # Logs and EMF lines go to standard error, as `sam local invoke` shows them apart from the result.
            output = emf.Tee(sys.stderr)
            with contextlib.redirect_stdout(output):
                module, spec = functions.load(args.function, env)
                handler = getattr(module, spec.handler)
                context = LocalContext(spec.timeout, args.function, memory_limit_in_mb=spec.memory_mb)
                result = handler(endpoint.event, context)
            # As CloudWatch Logs turns a function's EMF lines into metrics.
            # (functions.load applied `env`, so this client has the local endpoint's test credentials.)
            emf.publish(
                output.lines, boto3.client("cloudwatch", region_name=settings.region, endpoint_url=endpoint.url)
            )
            note = concurrent_tick_note(args.function, endpoint, output.lines)
            if note is not None:
                print(f"queue-scaler invoke: {note}", file=sys.stderr)
    except (LocalCloudNotRunning, LocalCloudFailed) as error:
        print(f"queue-scaler invoke: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        # The handler raised (or the local cloud could not start): exit 1, as a failed invocation.
        traceback.print_exc()
        print(f"queue-scaler invoke: {args.function} raised {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0

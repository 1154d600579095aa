"""`queue-scaler invoke FUNCTION EVENT_FILE`: a function's handler, in-process, against the local cloud.

What `sam local invoke` does, without Docker (CONTRACTS.md section 2): the template's handler and
environment, references resolved to the local cloud's resources; the running local cloud (from
`queue-scaler local up`), a fresh one, or `--endpoint-url`. The handler's logs go to standard error,
its return value to standard output as JSON.
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

from devkit.commands.local import DEFAULT_DIR, down, read_state, up
from devkit.lambdas import LocalContext
from devkit.localcloud import functions
from devkit.localcloud.stack import LocalSettings
from devkit.template import UnresolvedReference


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("invoke", help="run a template function's handler on an event, against the local cloud")
    parser.add_argument("function", metavar="FUNCTION", help="the function's logical id, e.g. ScalerFunction")
    parser.add_argument("event", metavar="EVENT_FILE", type=Path, help="the event (JSON), e.g. events/scaler/...")
    parser.add_argument("--endpoint-url", help="AWS endpoint to use instead of the local cloud")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_DIR, help="the local cloud to use if it runs")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="override an environment variable"
    )
    parser.set_defaults(run=run)


@contextlib.contextmanager
def _endpoint(args: argparse.Namespace) -> Iterator[str]:
    """The endpoint to invoke against: given, running, or a fresh local cloud for this invocation."""
    if args.endpoint_url:
        yield args.endpoint_url
        return
    state = read_state(args.state_dir)
    if state is not None:
        yield state["endpoint_url"]
        return
    with tempfile.TemporaryDirectory(prefix="queue-scaler-invoke-") as fresh:
        try:
            yield up(Path(fresh))["endpoint_url"]
        finally:
            down(Path(fresh))


def run(args: argparse.Namespace) -> int:
    try:
        event = json.loads(args.event.read_text(encoding="utf-8"))
        overrides = dict(item.split("=", 1) for item in args.env)
    except (OSError, ValueError) as error:
        print(f"queue-scaler invoke: {error}", file=sys.stderr)
        return 2
    settings = LocalSettings()
    try:
        env = functions.environment(args.function, settings, overrides)
    except (KeyError, UnresolvedReference) as error:
        print(f"queue-scaler invoke: {error}", file=sys.stderr)
        return 2
    try:
        with _endpoint(args) as endpoint:
            env.update(
                {
                    "AWS_ENDPOINT_URL": endpoint,
                    "AWS_DEFAULT_REGION": settings.region,
                    "AWS_REGION": settings.region,
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                }
            )
            # Logs and EMF lines go to standard error, as `sam local invoke` shows them apart from the result.
            with contextlib.redirect_stdout(sys.stderr):
                module, spec = functions.load(args.function, env)
                handler = getattr(module, spec.handler)
                result = handler(event, LocalContext(timeout_seconds=spec.timeout, function_name=args.function))
    except Exception:
        # The handler raised (or the local cloud could not start): exit 1, as a failed invocation.
        traceback.print_exc()
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0

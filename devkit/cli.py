"""The `queue-scaler` command line: decide, explain, schema and the local tools.

Each command lives in its own module under `devkit/commands/` and registers itself here, so the
entry point stays a table of contents.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from importlib import metadata

from devkit.commands import bench, decide, demo, explain, invoke, local, preflight, producer, schema, simulate
from devkit.ownership import Stopped, stop_on_signals

COMMANDS = (decide, explain, schema, invoke, demo, local, simulate, bench, producer, preflight)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="queue-scaler",
        description="Keep SQS-fed EC2 worker fleets sized to their backlog.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def _version() -> str:
    try:
        return metadata.version("queue-scaler")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    # The services log through stdlib loggers; on a terminal, warnings and errors are enough.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with stop_on_signals():
            code: int = args.run(args)
    except KeyboardInterrupt as stopped:
        # Ctrl-C, SIGTERM or SIGHUP: one line, no traceback; what the command started was stopped on the way out.
        name = stopped.signal.name if isinstance(stopped, Stopped) else "SIGINT"
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(f"queue-scaler {args.command}: stopped by {name}", file=sys.stderr)
        return 128 + int(stopped.signal if isinstance(stopped, Stopped) else signal.SIGINT)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()

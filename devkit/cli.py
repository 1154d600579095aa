"""The `queue-scaler` command line: decide, explain, schema and the local tools.

Each command lives in its own module under `devkit/commands/` and registers itself here, so the
entry point stays a table of contents.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from devkit.commands import bench, decide, demo, explain, invoke, local, producer, schema, simulate

COMMANDS = (decide, explain, schema, invoke, demo, local, simulate, bench, producer)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="queue-scaler",
        description="Keep SQS-fed EC2 worker fleets sized to their backlog.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The services log through stdlib loggers; on a terminal, warnings and errors are enough.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()

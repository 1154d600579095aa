"""`queue-scaler demo` (`make demo`): the whole system on the local cloud, a burst, scale-out and drain."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devkit import output


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler demo` (devkit/cli.py names the command and its help)."""
    parser.add_argument("--out", type=Path, default=Path("out"), help="where the PNG timelines go")
    parser.add_argument("--timeout", type=float, default=170.0, help="give up after this many seconds")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devkit.demo import passed
    from devkit.demo import run as play
    from devkit.localcloud.control import LocalCloudFailed
    from devkit.ownership import StateDirInUse

    try:
        report, status = play(output.console(), out_dir=args.out, timeout=args.timeout)
    except (StateDirInUse, LocalCloudFailed) as error:
        # Another demo holds the state directory, or the local cloud could not start (the cause in one line).
        print(f"queue-scaler demo: {error}", file=sys.stderr)
        return 1
    return 0 if passed(report, status) else 1

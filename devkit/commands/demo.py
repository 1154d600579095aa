"""`queue-scaler demo` (`make demo`): the whole system on the local cloud, a burst, scale-out and drain."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devkit import output


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="a burst across plans on the local cloud: scale-out, jobs, DLQ, drain")
    parser.add_argument("--out", type=Path, default=Path("out"), help="where the PNG timelines go")
    parser.add_argument("--timeout", type=float, default=170.0, help="give up after this many seconds")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devkit.demo import passed
    from devkit.demo import run as play
    from devkit.ownership import StateDirInUse

    try:
        report, status = play(output.console(), out_dir=args.out, timeout=args.timeout)
    except StateDirInUse as error:
        print(f"queue-scaler demo: {error}", file=sys.stderr)
        return 1
    return 0 if passed(report, status) else 1

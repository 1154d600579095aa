"""`queue-scaler demo` (`make demo`): the whole system on the local cloud, a burst, scale-out and drain."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="a burst across plans on the local cloud: scale-out, jobs, DLQ, drain")
    parser.add_argument("--out", type=Path, default=Path("out"), help="where the PNG timelines go")
    parser.add_argument("--timeout", type=float, default=170.0, help="give up after this many seconds")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devkit.demo import run as play

    report, status = play(Console(), out_dir=args.out, timeout=args.timeout)
    ledger = status["ledger"]
    refunds_right = ledger["refunds"] == len(report.failing & report.charged) and not ledger["problems"]
    # Every submitted job settled, each counted once by its outcome in the ledger.
    outcomes = ledger["outcomes"]
    adds_up = sum(outcomes.values()) == len(report.submitted) and not outcomes["pending"] and not outcomes["running"]
    return 0 if not report.lost and not report.duplicates and refunds_right and adds_up else 1

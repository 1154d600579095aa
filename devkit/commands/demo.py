"""`queue-scaler demo`: a burst on an in-process AWS emulator, scale-out from zero and back."""

from __future__ import annotations

import argparse

from rich.console import Console


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="a scripted burst on an in-process emulator: scale-out and scale-in")
    parser.add_argument("--pace", type=float, default=0.02, help="real seconds per simulated 10 s tick")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devkit.demo import run as play

    return 0 if play(Console(soft_wrap=True), pace_seconds=args.pace).ok else 1

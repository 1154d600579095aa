"""`queue-scaler local up|status|down|new-image`: the whole system on 127.0.0.1 (CONTRACTS.md section 3).

A thin CLI over `devkit.localcloud.control`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from devkit.localcloud.control import (
    DEFAULT_DIR,
    SEARCH_DIRS,
    OptionsDiffer,
    UnknownPool,
    fetch_status,
    find_running,
    new_image,
    stop_running,
    up,
)
from devkit.localcloud.stack import LocalSettings


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler local` (devkit/cli.py names the command and its help)."""
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"where the local cloud keeps its state (up: {DEFAULT_DIR}; status, down: the running one "
        f"of {', '.join(map(str, SEARCH_DIRS))})",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = actions.add_parser("up", help="start the local cloud in the background; print its endpoint URL")
    start.add_argument(
        "--schedule-seconds",
        type=float,
        help=f"how often the scaler's schedule rule fires (compressed minute; {LocalSettings().schedule_seconds:g} "
        "for a new cloud); 0 turns it off. A running cloud with another value is an error",
    )
    start.add_argument(
        "--no-reconcile",
        dest="reconcile",
        action="store_false",
        help="turn the lifecycle reconciler's schedule off, so that only your invocations reconcile "
        "(events/lifecycle/reconcile-scheduled.json). A running cloud with it on is an error",
    )
    status = actions.add_parser("status", help="pools, queues, lifecycle actions")
    status.add_argument("--json", action="store_true", help="one JSON object")
    actions.add_parser("down", help="stop the local cloud and every process it started")
    image = actions.add_parser(
        "new-image",
        help="deploy a new image to POOL as a deploy with a new AMI or image URI does: a new launch template "
        "version in its group, which the scaler then rolls out with an instance refresh; print the version",
    )
    image.add_argument("pool", metavar="POOL", help="the pool's name (messaging, video, ai)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "up":
            print(up(args.state_dir or DEFAULT_DIR, args.schedule_seconds, reconcile=args.reconcile)["endpoint_url"])
            return 0
        if args.action == "down":
            print(stop_running(args.state_dir))
            return 0
        found = find_running(args.state_dir)
        if found is None:
            where = args.state_dir or " or ".join(map(str, SEARCH_DIRS))
            print(f"queue-scaler local: not running in {where} (start it: queue-scaler local up)", file=sys.stderr)
            return 1
        # new-image prints the version it deployed; status prints the cloud's status below.
        status = {"version": new_image(found[1], args.pool)} if args.action == "new-image" else fetch_status(found[1])
    except (OptionsDiffer, UnknownPool) as error:
        print(f"queue-scaler local {args.action}: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as error:
        print(f"queue-scaler local {args.action}: {error}", file=sys.stderr)
        return 1
    if args.action == "new-image":
        print(status["version"])
    elif args.json:
        print(json.dumps(status, indent=2))
    else:
        print_status(status)
    return 0


def print_status(status: dict[str, Any]) -> None:
    print(f"endpoint {status['endpoint_url']}")
    for name, pool in status["pools"].items():
        states = ", ".join(f"{i['id']} {i['state']}" for i in pool["instances"]) or "no instances"
        print(f"pool {name}: desired {pool['desired']}, in service {pool['in_service']} ({states})")
        for refresh in pool.get("refreshes", [])[-1:]:
            print(f"pool {name}: instance refresh {refresh['status']}, {refresh['left']} of {refresh['total']} left")
    for name, queue in status["queues"].items():
        if queue["visible"] or queue["in_flight"] or queue["dlq"]:
            print(f"queue {name}: {queue['visible']} visible, {queue['in_flight']} in flight, {queue['dlq']} in DLQ")
    life = status["lifecycle"]
    print(f"lifecycle actions: {life['completed']} completed, {life['pending']} pending, {life['timed_out']} timed out")
    outcomes = status["ledger"]["outcomes"]
    print("ledger jobs: " + ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items()))

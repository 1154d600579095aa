"""`queue-scaler schema`: the JSON Schema of the pool configuration."""

from __future__ import annotations

import argparse
import json

from queue_scaler.config import json_schema


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schema", help="print the JSON Schema of the scaler configuration")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0

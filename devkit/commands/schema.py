"""`queue-scaler schema`: the JSON Schema of the pool configuration."""

from __future__ import annotations

import argparse
import json

from queue_scaler.scaling.config import json_schema


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler schema` (devkit/cli.py names the command and its help)."""
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0

"""`queue-scaler decide FILE|-`: one decision from a JSON request, as JSON. Pure: no AWS call."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from devkit.commands.common import read_text
from queue_scaler.scaling.domain.decision import DecisionRequest, decide
from queue_scaler.shared.validation import describe_validation_error


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler decide` (devkit/cli.py names the command and its help)."""
    parser.add_argument("file", metavar="FILE|-", help="request file, or - for standard input")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        text = read_text(args.file)
    except OSError as error:
        print(f"queue-scaler decide: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        request = DecisionRequest.model_validate_json(text)
    except ValidationError as error:
        print(f"queue-scaler decide: invalid request:\n{describe_validation_error(error)}", file=sys.stderr)
        return 2
    print(decide(request).model_dump_json(indent=2))
    return 0

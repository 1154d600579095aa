"""`python -m tests.functional.sqs_requests LOG MODULE`: run MODULE as `python -m MODULE` would, with
every SQS request it makes appended to LOG, one JSON line each: its parameters, and how many
messages the answer carried.

The worker tests read LOG to assert what went over the wire (a long poll's WaitTimeSeconds, the
entries of a DeleteMessageBatch) while moto answers as SQS would. The hooks are botocore's own
events on the default session, the one `boto3.client` uses: the parameters are taken before they
are serialized, and the line is written once the answer is parsed.
"""

from __future__ import annotations

import json
import runpy
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3


def load(log: Path, operation: str | None = None) -> list[dict[str, Any]]:
    """The requests recorded so far (optionally of one operation), in the order they were made."""
    if not log.exists():
        return []
    lines = log.read_text().split("\n")[:-1]  # the last element is "" or a line still being written
    records = [json.loads(line) for line in lines]
    return [r for r in records if operation is None or r["operation"] == operation]


def main() -> None:
    log, module = Path(sys.argv[1]), sys.argv[2]
    lock = threading.Lock()
    out = log.open("a")

    def keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["recorded_params"] = json.loads(json.dumps(params, default=str))

    def record(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        line = {
            "operation": model.name,
            "at": time.monotonic(),
            "params": context.get("recorded_params", {}),
            "messages": len(parsed.get("Messages", [])),
            "error": parsed.get("Error", {}).get("Code"),
        }
        with lock:
            out.write(json.dumps(line) + "\n")
            out.flush()

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.sqs", keep)
    boto3.DEFAULT_SESSION.events.register("after-call.sqs", record)
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

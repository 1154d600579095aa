"""Helpers for the worker's functional tests: a moto server on 127.0.0.1 and real worker processes.

Plain helpers, not fixtures, so that test modules declare their own fixtures without a shared
conftest. Every wait here is bounded in time; nothing leaves the loopback interface.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

#: The worker processes get this environment and nothing from the developer's AWS setup.
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "PYTHONUNBUFFERED": "1",
}


def sqs_client(endpoint: str) -> Any:
    """The test's own SQS client: one attempt, short timeouts (moto answers 500 to the unknown)."""
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 1}),
    )


def make_queue(sqs: Any, prefix: str, *, max_receive_count: int = 3, visibility: int = 30) -> tuple[str, str]:
    """A uniquely named queue with a DLQ after `max_receive_count` receives; returns (queue, DLQ) URLs."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
    attributes = {"VisibilityTimeout": str(visibility), "RedrivePolicy": redrive}
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"], dlq


def envelope(job_id: str, plan: str = "pro", **payload: Any) -> str:
    """A valid job envelope body for queue_worker.examples:sleep_job."""
    return json.dumps(
        {
            "job_id": job_id,
            "user_id": "u-1",
            "plan": plan,
            "kind": "test.sleep",
            "credits": 1,
            "submitted_at": "2026-01-01T00:00:00Z",
            "payload": payload,
        }
    )


def send_bodies(sqs: Any, url: str, bodies: Iterable[str]) -> None:
    """Send message bodies in batches of 10."""
    batch: list[str] = []
    for body in [*bodies, None]:
        if body is not None:
            batch.append(body)
        if batch and (len(batch) == 10 or body is None):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)]
            answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            assert not answer.get("Failed"), answer
            batch = []


def counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue; moto's approximate counts are exact."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def drain_bodies(sqs: Any, url: str, expected: int, timeout: float = 10) -> list[str]:
    """Receive and delete messages until `expected` were read or `timeout` passed; returns bodies."""
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < expected and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll `condition` until it returns something truthy or `timeout` seconds pass; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class WorkerProcess:
    """A real `python -m queue_worker` process with its JSON log captured in a file."""

    def __init__(
        self,
        endpoint: str,
        log_dir: Path,
        name: str,
        *,
        launcher: tuple[str, ...] = (),
        **settings: str | int | float,
    ) -> None:
        """`launcher`: a module and its arguments that run `queue_worker` (tests/functional/sqs_requests.py)."""
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        env = {"PATH": os.environ.get("PATH", ""), **BASE_ENV, "AWS_ENDPOINT_URL": endpoint}
        env |= {
            "JOB_HANDLER": "queue_worker.examples:sleep_job",
            "HEALTH_FILE": str(log_dir / f"{name}.health"),
            "POOL_NAME": "test",
        }
        env |= {key.upper(): str(value) for key, value in settings.items()}
        self.env = env
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", *launcher, "queue_worker"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def _complete_lines(self) -> list[str]:
        """The log's lines so far, without a last line the worker is still writing (no newline yet):
        its output is block-buffered, so a read can land in the middle of a flush."""
        text = self.log_path.read_text()
        lines = text.split("\n")
        return lines[:-1]  # the last element is "" after a full line, or a line being written

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The JSON log events written so far (EMF metric lines excluded), optionally of one kind."""
        found = []
        for line in self._complete_lines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if "event" in record and (event is None or record["event"] == event):
                found.append(record)
        return found

    def metric_lines(self) -> list[dict[str, Any]]:
        """The EMF lines written so far."""
        lines = [json.loads(line) for line in self._complete_lines() if line.startswith("{")]
        return [line for line in lines if "_aws" in line]

    def job_ids(self, event: str) -> list[str]:
        """job_id of every `event` line, in log order."""
        return [record["job_id"] for record in self.events(event) if "job_id" in record]

    def signal(self, signum: signal.Signals) -> None:
        """Send `signum` to the worker."""
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for exit; returns the exit code (raises subprocess.TimeoutExpired when too slow)."""
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is not None:
                self._log.close()

    def kill(self) -> None:
        """Ensure the process is gone (test cleanup)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()

    def log_text(self) -> str:
        """The whole log, for assertion messages."""
        return self.log_path.read_text()

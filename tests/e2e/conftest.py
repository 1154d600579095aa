"""End-to-end tests: the local cloud as a user runs it (real processes, real signals, loopback only)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit.localcloud import stack
from devkit.localcloud.control import down, fetch_status, up
from devkit.localcloud.stack import LocalSettings
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.refund import RefundPolicy, envelope_reservation
from queue_scaler.shared.jobs import JobEnvelope

#: How long a test waits for one status answer (a bound, well above the slowest seen: 6 s under load).
STATUS_WAIT_SECONDS = 60.0


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `seconds` (a bound, never a sleep)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def alive(pid: int) -> bool:
    """Running, and not a zombie (a reaped or never-reaped exited process does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def unclean_exits(state_dir: Path, finished: Iterable[dict[str, Any]], lines: int = 25) -> str:
    """The workers of `finished` that did not drain cleanly (exit 0, SIGTERM only), each with the end of
    its log: what a failed assertion prints, since a CI run keeps nothing but its output."""
    parts = []
    for worker in finished:
        if worker["exit_code"] == 0 and worker["signals"] and set(worker["signals"]) == {"SIGTERM"}:
            continue
        log = state_dir / "instances" / f"{worker['instance_id']}.log"
        tail = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else ["(no log)"]
        parts.append("\n".join([f"{worker}:", *tail]))
    return "\n\n".join(parts)


class Cloud:
    """A running local cloud: its state, its status, and clients for its endpoint."""

    def __init__(self, state_dir: Path, state: dict[str, Any]) -> None:
        self.state_dir = state_dir
        self.state = state
        self.endpoint_url: str = state["endpoint_url"]
        session = boto3.session.Session(
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        self.sqs = session.client("sqs", endpoint_url=self.endpoint_url)
        self.autoscaling = session.client("autoscaling", endpoint_url=self.endpoint_url)
        self.dynamodb = session.client("dynamodb", endpoint_url=self.endpoint_url)
        #: The CLI's options that select this local cloud.
        self.local = ("--local", "--state-dir", str(state_dir))

    def status(self, ledger: bool = False) -> dict[str, Any]:
        # The status asks every queue and group, and with `ledger` scans the whole ledger: with a dozen
        # workers polling the same process on two busy cores that takes seconds, and the scan holds the
        # daemon meanwhile, so tests leave the ledger out unless they read it, and wait longer than
        # the CLI's 10 s.
        return fetch_status(self.state, timeout=STATUS_WAIT_SECONDS, ledger=ledger)

    def queue_url(self, name: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def reserve(self, bodies: Iterable[dict[str, Any]], pool: str) -> None:
        """Credit each job's user and reserve the job, as the producer does before it sends it.

        A worker refuses a job the ledger holds no reservation for (the run lease), so a test that
        sends envelopes by hand reserves them first."""
        ledger = DynamoLedger(stack.ledger_table(LocalSettings()), self.dynamodb)
        now = datetime.now(UTC)
        for body in bodies:
            job = JobEnvelope.model_validate(body)
            if job.credits:
                ledger.deposit(job.user_id, job.credits, f"e2e-{job.job_id}", now)
            ledger.reserve(envelope_reservation(job, pool, RefundPolicy(), now), claim=f"submit-{job.job_id}")


@pytest.fixture
def cloud_factory(tmp_path: Path) -> Iterator[Any]:
    """Starts local clouds under tmp_path; every one is taken down, and checked gone, afterwards."""
    started: list[Path] = []

    def start(
        schedule_seconds: float | None = None,
        drop_lifecycle_events: tuple[str, ...] = (),
        reconcile: bool = True,
        drain_seconds: int | None = None,
    ) -> Cloud:
        state_dir = tmp_path / f"cloud-{len(started)}"
        started.append(state_dir)
        return Cloud(state_dir, up(state_dir, schedule_seconds, drop_lifecycle_events, reconcile, drain_seconds))

    yield start
    for state_dir in started:
        down(state_dir)

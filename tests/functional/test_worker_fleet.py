"""Fleets of real worker processes against a moto server: no job lost or doubled, priority honoured.

The fleet runs under the ledger's run lease (LEDGER_TABLE): a copy SQS delivers again while its job
still runs (a heartbeat late on a busy machine) waits for the lease, then finds the job completed.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit import template
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import AttemptOutcome, JobStatus
from queue_scaler.credits.domain.refund import RefundPolicy, envelope_reservation
from queue_scaler.shared.jobs import JobEnvelope
from tests.functional.worker_fixtures import (
    WorkerProcess,
    counts,
    drain_bodies,
    envelope,
    make_queue,
    send_bodies,
    wait_for,
)


@pytest.fixture
def fleet(endpoint: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    workers: list[WorkerProcess] = []
    yield workers
    for worker in workers:
        worker.kill()


def completed(workers: list[WorkerProcess]) -> Counter[str]:
    """How many times each job_id's handler succeeded across the fleet's logs (`job_succeeded`, logged
    before the deletion: a job whose end was still being written at a drain deadline is released, not
    deleted, and the next receive finds it completed in the ledger and deletes it)."""
    return Counter(job_id for worker in workers for job_id in worker.job_ids("job_succeeded"))


def dynamodb(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def reserved_ledger(endpoint: str, jobs: list[str]) -> str:
    """A ledger table on the moto server in which every job is reserved in the workers' pool."""
    client = dynamodb(endpoint)
    table = f"ledger-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, **template.tables(template.load())["LedgerTable"])
    ledger = DynamoLedger(table, client)
    now = datetime.now(UTC)
    ledger.deposit("u-1", len(jobs), f"purchase-{table}", now)

    def reserve(job: str) -> None:
        envelope_job = JobEnvelope.model_validate_json(envelope(job))
        ledger.reserve(envelope_reservation(envelope_job, "test", RefundPolicy(), now), claim="submit")

    with ThreadPoolExecutor(max_workers=8) as pool:  # what a fleet of producers would do
        list(pool.map(reserve, jobs))
    return table


@pytest.mark.timeout(600)
def test_given_500_jobs_when_half_the_fleet_is_replaced_midway_then_each_job_completes_exactly_once(
    endpoint: str, sqs: Any, tmp_path: Path, fleet: list[WorkerProcess]
) -> None:
    # maxReceiveCount 4: a job may be released by both SIGTERMed workers and still run;
    # the jobs failing on purpose are received 4 times, then redriven to the DLQ.
    url, dlq = make_queue(sqs, "fleet", max_receive_count=4, visibility=10)
    failing = {f"f-{i:03d}" for i in range(0, 500, 50)}
    jobs = [f"f-{i:03d}" for i in range(500)]
    table = reserved_ledger(endpoint, jobs)
    send_bodies(sqs, url, [envelope(job, seconds=0.02, fail=job in failing) for job in jobs])
    settings: dict[str, str | int | float] = {
        "LEDGER_TABLE": table,
        "QUEUE_URLS": url,
        "WORKER_SLOTS": 4,
        "WORKER_PREFETCH": 4,
        "DRAIN_SECONDS": 3,
        "VISIBILITY_TIMEOUT": 10,
        "RETRY_DELAY_SECONDS": 0,
        "POLL_WAIT_SECONDS": 1,
    }

    def start(name: str) -> WorkerProcess:
        worker = WorkerProcess(endpoint, tmp_path, name, **settings)
        fleet.append(worker)
        return worker

    first = [start(f"w{i}") for i in range(4)]
    # Bounds for a loaded 2-core machine: they say the fleet gets there, not how fast.
    assert wait_for(lambda: sum(completed(fleet).values()) >= 150, 180), first[0].log_text()[-3000:]
    for worker in first[:2]:
        worker.signal(signal.SIGTERM)
    replacements = [start("w4"), start("w5")]
    for worker in first[:2]:
        # DRAIN_SECONDS 3, and room for a 2-core machine busy starting the replacements: the bound
        # says the drain ends, not how fast (timing is the benchmarks' business).
        assert worker.wait(3 + 10) == 0
    assert sum(len(w.events("job_released")) for w in first[:2]) > 0, "the stopped workers held prefetched jobs"

    expected = set(jobs) - failing
    settled = wait_for(lambda: set(completed(fleet)) == expected and counts(sqs, dlq)[0] == len(failing), 300)
    dead_letters = counts(sqs, dlq)
    assert settled, (sorted(expected - set(completed(fleet))), dead_letters, counts(sqs, url))
    # A copy left to come back after a lease (VISIBILITY_TIMEOUT 10) is then deleted as completed.
    assert wait_for(lambda: counts(sqs, url) == (0, 0), 30), counts(sqs, url)
    for worker in first[2:] + replacements:
        worker.signal(signal.SIGTERM)
        # Idle, it exits at once; the bound is the drain's, with the same room as above (5 s was exceeded
        # on a fresh clone's run beside the e2e tier).
        assert worker.wait(3 + 10) == 0

    done = completed(fleet)
    assert set(done) == expected
    assert [job for job, times in done.items() if times != 1] == []
    # The ledger agrees: each job completed once, by one attempt.
    _, records = DynamoLedger(table, dynamodb(endpoint)).contents()
    ended = {r.job_id: r.tally()[AttemptOutcome.COMPLETED] for r in records if r.status == JobStatus.COMPLETED}
    assert ended == dict.fromkeys(expected, 1)
    dead = [json.loads(body)["job_id"] for body in drain_bodies(sqs, dlq, len(failing))]
    assert sorted(dead) == sorted(failing)
    assert counts(sqs, url) == (0, 0)
    assert counts(sqs, dlq) == (0, 0)
    emf = [line for worker in fleet for line in worker.metric_lines()]
    assert sum(sum(line.get("JobsCompleted", [])) for line in emf) == len(expected)
    assert {line["Pool"] for line in emf} == {"test"}


@pytest.mark.timeout(90)
def test_given_two_full_queues_when_one_worker_consumes_then_the_higher_drains_first_and_the_lower_progresses(
    endpoint: str, sqs: Any, tmp_path: Path, fleet: list[WorkerProcess]
) -> None:
    high, _ = make_queue(sqs, "high")
    low, _ = make_queue(sqs, "low")
    per_queue = 60
    send_bodies(sqs, high, [envelope(f"h-{i}", plan="enterprise", seconds=0.02) for i in range(per_queue)])
    send_bodies(sqs, low, [envelope(f"l-{i}", plan="free", seconds=0.02) for i in range(per_queue)])
    limit = 3
    worker = WorkerProcess(
        endpoint,
        tmp_path,
        "priority",
        QUEUE_URLS=f"{high},{low}",
        WORKER_SLOTS=2,
        STARVATION_LIMIT=limit,
        DRAIN_SECONDS=2,
        POLL_WAIT_SECONDS=1,
    )
    fleet.append(worker)
    assert wait_for(lambda: len(worker.job_ids("job_completed")) == 2 * per_queue, 60), worker.log_text()[-3000:]
    worker.signal(signal.SIGTERM)
    assert worker.wait(4) == 0

    order = worker.job_ids("job_completed")
    last_high = max(i for i, job in enumerate(order) if job.startswith("h-"))
    low_before = sum(1 for job in order[:last_high] if job.startswith("l-"))
    # Strict priority would finish `high` with 0 low jobs done; the guard gives `low` about one
    # receive in limit + 1, each of up to 2 messages (the free slots).
    assert low_before > 0, "the lower queue must progress while the higher one is full"
    assert low_before <= per_queue // 2, f"{low_before} low jobs ran before the high queue drained"
    assert last_high < len(order) - 1, "the higher queue must drain first"
    assert counts(sqs, high) == (0, 0)
    assert counts(sqs, low) == (0, 0)

"""Exactly once, against a moto server with real worker processes (issue 23's cases 1 to 4).

1. Two copies of one job's message on a worker with 2 slots: the job runs once.
2. One dead letter of a released job delivered twice: one copy goes back, and the job runs once.
3. A dead letter while another copy of the job is queued: a refund and no run (never both).
4. A submit whose SendMessage reached SQS but whose answer was lost: the reservation is kept, a retry
   with the same job id sends a second copy, and the job runs once and is charged once. A send SQS
   rejects still releases the reservation.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from devkit import template
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, JobStatus, SendState
from queue_scaler.credits.domain.refund import DeadLetterPolicy, RefundPolicy, envelope_reservation
from queue_scaler.credits.services.refunds import RefundService
from queue_scaler.producer import Producer, SendUnknown, SubmitFailed
from queue_scaler.scaling.adapters.sqs import SqsJobQueues
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.shared.events import DeadLetter
from queue_scaler.shared.jobs import JobEnvelope
from tests.fakes import FakeNotifier, FakeParking, RecordingMetrics
from tests.functional.worker_fixtures import WorkerProcess, counts, make_queue, sqs_client, wait_for

POOL = "test"  # the workers' POOL_NAME (worker_fixtures)
NOW = datetime.now(UTC)


@pytest.fixture
def ledger(endpoint: str) -> DynamoLedger:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"ledger-{id(client)}"
    client.create_table(TableName=name, **template.tables(template.load())["LedgerTable"])
    table = DynamoLedger(name, client)
    table.deposit("u-1", 100, f"purchase-{name}", NOW)
    return table


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill()


def job(job_id: str, seconds: float = 0.0) -> JobEnvelope:
    return JobEnvelope.model_validate(
        {
            "job_id": job_id,
            "user_id": "u-1",
            "plan": "pro",
            "kind": "test.sleep",
            "credits": 7,
            "submitted_at": NOW.isoformat(),
            "payload": {"seconds": seconds},
        }
    )


def reserve(ledger: DynamoLedger, envelope: JobEnvelope) -> None:
    ledger.reserve(envelope_reservation(envelope, POOL, RefundPolicy(), NOW), claim="submit")


def start_worker(
    endpoint: str, tmp_path: Path, ledger: DynamoLedger, url: str, workers: list[WorkerProcess], *, name: str
) -> WorkerProcess:
    worker = WorkerProcess(
        endpoint,
        tmp_path,
        name,
        QUEUE_URLS=url,
        WORKER_SLOTS=2,
        VISIBILITY_TIMEOUT=4,
        RETRY_DELAY_SECONDS=0,
        POLL_WAIT_SECONDS=1,
        DRAIN_SECONDS=2,
        LEDGER_TABLE=ledger._table,
    )
    workers.append(worker)
    return worker


def refund_service(endpoint: str, ledger: DynamoLedger) -> RefundService:
    return RefundService(
        ledger,
        FakeParking(),
        FakeNotifier(),
        RecordingMetrics(),
        queues=SqsJobQueues(sqs_client(endpoint)),
        policy=RefundPolicy(),
        dead_letters=DeadLetterPolicy(required_failures=2, max_returns=3),
        lease_seconds=30,
    )


def dead_letter(envelope: JobEnvelope, queue_url: str, message_id: str = "dl-1") -> DeadLetter:
    name = queue_url.rsplit("/", 1)[-1]
    return DeadLetter.model_validate(
        {
            "messageId": message_id,
            "body": envelope.to_body(),
            "attributes": {
                "ApproximateReceiveCount": "3",
                "DeadLetterQueueSourceArn": f"arn:aws:sqs:us-east-1:123456789012:{name}",
            },
        }
    )


def runs(workers: list[WorkerProcess], job_id: str) -> int:
    return sum(1 for w in workers for e in w.events("job_started") if e.get("job_id") == job_id)


def stop(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(10) == 0


@pytest.mark.timeout(120)
def test_given_two_copies_of_a_job_on_a_2_slot_worker_then_it_runs_once_and_completes_once(
    endpoint: str, sqs: Any, tmp_path: Path, ledger: DynamoLedger, workers: list[WorkerProcess]
) -> None:
    url, _ = make_queue(sqs, "twice", visibility=4)
    envelope = job("j-twice", seconds=1.5)
    reserve(ledger, envelope)
    for _ in range(2):  # an SQS duplicate, or a producer's resend
        sqs.send_message(QueueUrl=url, MessageBody=envelope.to_body())
    worker = start_worker(endpoint, tmp_path, ledger, url, workers, name="twice")
    # The second copy waits for the first's lease, then finds the job completed and is deleted.
    assert wait_for(lambda: worker.events("job_skipped") and counts(sqs, url) == (0, 0), 60), worker.log_text()[-3000:]
    stop(workers)
    assert runs(workers, "j-twice") == 1
    assert len(worker.events("job_leased_elsewhere")) >= 1
    record = ledger.job("j-twice")
    assert record is not None and record.status == JobStatus.COMPLETED
    assert [a.outcome for a in record.attempts] == [AttemptOutcome.COMPLETED]
    account = ledger.account("u-1")
    assert account is not None and (account.balance, account.reserved, account.refunded) == (93, 7, 0)


@pytest.mark.timeout(120)
def test_given_a_released_jobs_dead_letter_delivered_twice_then_one_copy_returns_and_it_runs_once(
    endpoint: str, sqs: Any, tmp_path: Path, ledger: DynamoLedger, workers: list[WorkerProcess]
) -> None:
    url, _ = make_queue(sqs, "returned", visibility=4)
    envelope = job("j-released")
    reserve(ledger, envelope)
    for index in range(2):  # released at two drains: not failures
        released = Attempt(attempt_id=f"a-{index}", at=NOW, outcome=AttemptOutcome.RELEASED)
        ledger.end_attempt(POOL, "j-released", released, f"w/a-{index}")
    refunds = refund_service(endpoint, ledger)
    letter = dead_letter(envelope, url)
    results = [refunds.handle(letter, datetime.now(UTC)).result for _ in range(2)]
    assert results == ["returned", "duplicate"]
    assert counts(sqs, url) == (1, 0), "one copy back in its queue"
    worker = start_worker(endpoint, tmp_path, ledger, url, workers, name="returned")
    assert wait_for(lambda: worker.events("job_completed") and counts(sqs, url) == (0, 0), 60)
    stop(workers)
    assert runs(workers, "j-released") == 1
    account = ledger.account("u-1")
    assert account is not None and (account.refunded, account.reserved) == (0, 7)


@pytest.mark.timeout(120)
def test_given_a_dead_letter_while_a_copy_is_queued_then_refunded_and_the_copy_never_runs(
    endpoint: str, sqs: Any, tmp_path: Path, ledger: DynamoLedger, workers: list[WorkerProcess]
) -> None:
    url, _ = make_queue(sqs, "refunded", visibility=4)
    envelope = job("j-refunded")
    reserve(ledger, envelope)
    for index in range(2):  # failed for good: its dead letter refunds it
        failed = Attempt(attempt_id=f"a-{index}", at=NOW, outcome=AttemptOutcome.FAILED)
        ledger.end_attempt(POOL, "j-refunded", failed, f"w/a-{index}")
    sqs.send_message(QueueUrl=url, MessageBody=envelope.to_body())  # another copy, still queued
    outcome = refund_service(endpoint, ledger).handle(dead_letter(envelope, url), datetime.now(UTC))
    assert (outcome.result, outcome.refunded) == ("refunded", 7)
    worker = start_worker(endpoint, tmp_path, ledger, url, workers, name="refunded")
    assert wait_for(lambda: worker.events("job_refused") and counts(sqs, url) == (0, 0), 60)
    stop(workers)
    assert runs(workers, "j-refunded") == 0, "the user got the credits back: the work is not done"
    [refused] = worker.events("job_refused")
    assert refused["job_id"] == "j-refunded" and "refunded" in refused["reason"]
    assert [line for line in worker.metric_lines() if sum(line.get("JobsRefused", [])) == 1] != []
    record = ledger.job("j-refunded")
    assert record is not None and record.status == JobStatus.FAILED and record.completed_at is None
    account = ledger.account("u-1")
    assert account is not None and (account.balance, account.refunded) == (100, 7)


def producer(ledger: DynamoLedger, client: Any, url: str) -> Producer:
    config = ScalerConfig.model_validate(
        {
            "pools": [
                {
                    "name": POOL,
                    "max_size": 1,
                    "queues": [{"name": url.rsplit("/", 1)[-1], "url": url, "target_per_instance": 1}],
                }
            ]
        }
    )
    return Producer(ledger, SqsJobQueues(client), config, RecordingMetrics(), policy=RefundPolicy())


def submit(service: Producer, job_id: str) -> bool:
    """Submit one 7-credit job as test_exactly_once's user; True when it found the job already sent."""
    submission = service.submit(
        user_id="u-1", plan="pro", kind="test.sleep", credits=7, now=NOW, job_id=job_id, payload={"seconds": 0.5}
    )
    return submission.duplicate


@pytest.mark.timeout(120)
def test_given_a_send_that_reached_sqs_but_timed_out_then_a_retry_resends_and_it_runs_once_and_charges_once(
    endpoint: str, sqs: Any, tmp_path: Path, ledger: DynamoLedger, workers: list[WorkerProcess]
) -> None:
    url, _ = make_queue(sqs, "ambiguous", visibility=4)
    client = sqs_client(endpoint)  # the producer's own, whose answer the test loses

    def time_out(**_: Any) -> None:  # SQS has taken the message; the client sees a read timeout
        raise ReadTimeoutError(endpoint_url=endpoint)

    client.meta.events.register("after-call.sqs.SendMessage", time_out)
    service = producer(ledger, client, url)
    with pytest.raises(SendUnknown, match=r"j-ambiguous: .*may have been sent.*job id j-ambiguous is safe"):
        submit(service, "j-ambiguous")
    client.meta.events.unregister("after-call.sqs.SendMessage", time_out)
    assert counts(sqs, url) == (1, 0), "SQS took the message"
    record = ledger.job("j-ambiguous")
    assert record is not None and (record.status, record.send_state) == (JobStatus.RESERVED, SendState.UNKNOWN)
    account = ledger.account("u-1")
    assert account is not None and (account.balance, account.reserved) == (93, 7), "the reservation is kept"
    assert submit(service, "j-ambiguous") is False, "the retry sends again"
    assert counts(sqs, url) == (2, 0)
    record = ledger.job("j-ambiguous")
    assert record is not None and record.send_state == SendState.SENT
    worker = start_worker(endpoint, tmp_path, ledger, url, workers, name="ambiguous")
    # Done once the second copy was received again after the run and deleted unrun (job_skipped): the
    # queue's counts alone can read (0, 0) while that copy's receive is under way, and a worker stopped
    # then releases it (a `released` attempt).
    done = wait_for(
        lambda: worker.events("job_completed") and worker.events("job_skipped") and counts(sqs, url) == (0, 0), 60
    )
    assert done, worker.log_text()[-3000:]
    stop(workers)
    assert runs(workers, "j-ambiguous") == 1
    record = ledger.job("j-ambiguous")
    assert record is not None and record.status == JobStatus.COMPLETED
    assert [a.outcome for a in record.attempts] == [AttemptOutcome.COMPLETED]
    account = ledger.account("u-1")
    assert account is not None and (account.balance, account.reserved, account.refunded) == (93, 7, 0)


def test_given_a_send_sqs_rejects_then_the_reservation_is_released(
    endpoint: str, sqs: Any, ledger: DynamoLedger
) -> None:
    url, _ = make_queue(sqs, "rejected")
    client = sqs_client(endpoint)

    def deny(**_: Any) -> Any:
        return _Response(403), {
            "Error": {"Code": "AccessDenied", "Message": "not allowed"},
            "ResponseMetadata": {"HTTPStatusCode": 403, "RetryAttempts": 0},
        }

    client.meta.events.register("before-call.sqs.SendMessage", deny)
    with pytest.raises(SubmitFailed, match=r"AccessDenied.*nothing was sent, its reservation was released"):
        submit(producer(ledger, client, url), "j-rejected")
    assert counts(sqs, url) == (0, 0) and ledger.job("j-rejected") is None
    account = ledger.account("u-1")
    assert account is not None and (account.balance, account.reserved) == (100, 0)


@pytest.mark.timeout(120)
def test_given_a_message_whose_reservation_was_released_then_no_worker_runs_it_and_it_is_counted(
    endpoint: str, sqs: Any, tmp_path: Path, ledger: DynamoLedger, workers: list[WorkerProcess]
) -> None:
    # A send judged rejected whose message reached SQS after all (a connection failure after
    # botocore's retries): its reservation was released, so the work would be free. Never run it.
    url, _ = make_queue(sqs, "released")
    envelope = job("j-released")
    reserve(ledger, envelope)
    assert ledger.release(envelope_reservation(envelope, POOL, RefundPolicy(), NOW), "submit")
    sqs.send_message(QueueUrl=url, MessageBody=envelope.to_body())
    worker = start_worker(endpoint, tmp_path, ledger, url, workers, name="released")
    assert wait_for(lambda: worker.events("job_refused") and counts(sqs, url) == (0, 0), 60), worker.log_text()[-3000:]
    stop(workers)
    assert runs(workers, "j-released") == 0
    [refused] = worker.events("job_refused")
    assert refused["job_id"] == "j-released" and "no reservation" in refused["reason"]
    assert sum(sum(line.get("JobsRefused", [])) for line in worker.metric_lines()) == 1
    account = ledger.account("u-1")
    assert account is not None and (account.balance, account.reserved) == (100, 0), "nothing charged"


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status

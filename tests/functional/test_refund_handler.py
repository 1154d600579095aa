"""DlqRefundFunction end to end under moto: the ledger in DynamoDB, parking, SNS notices, batches, races."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from devkit.localcloud.server import make_dynamodb_atomic
from queue_scaler.bootstrap import refund_service
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, Lease, StartVerdict
from queue_scaler.credits.domain.refund import RefundPolicy, envelope_reservation
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.events import DeadLetter
from queue_scaler.shared.jobs import JobEnvelope
from tests.fakes import RecordingMetrics
from tests.functional.handlers import FakeContext, event, load_handler
from tests.functional.moto_stack import (
    create_ledger_table,
    create_notice_topic,
    create_parking_table,
    create_queue,
    drain,
    parked_items,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
POOL = "video"


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    make_dynamodb_atomic()
    topic, inbox = create_notice_topic()
    names = {"ledger": create_ledger_table(), "parking": create_parking_table(), "topic": topic, "inbox": inbox}
    for key, value in {
        "LEDGER_TABLE": names["ledger"],
        "PARKING_TABLE": names["parking"],
        "NOTICE_TOPIC_ARN": topic,
        "ENVIRONMENT": "test",
        "REFUND_CAP": "1000",
        "POWERTOOLS_SERVICE_NAME": "dlq-refund",
        "POWERTOOLS_METRICS_NAMESPACE": "QueueScaler",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    return names


def service(stack: dict[str, str], lease_seconds: float = 60, metrics: RecordingMetrics | None = None):  # type: ignore[no-untyped-def]
    return refund_service(
        ledger_table=stack["ledger"],
        parking_table=stack["parking"],
        notice_topic_arn=stack["topic"],
        metrics=metrics or RecordingMetrics(),
        policy=RefundPolicy(cap=1000),
        lease_seconds=lease_seconds,
    )


class Book:
    """The producer's side of the ledger, for setting up refunds: deposits and reservations."""

    def __init__(self, table: str) -> None:
        self.ledger = DynamoLedger(table)

    def deposit(self, user_id: str, credits: int, reference: str, now: datetime) -> None:
        self.ledger.deposit(user_id, credits, reference, now)

    def reserve(self, job: JobEnvelope, now: datetime) -> None:
        self.ledger.reserve(envelope_reservation(job, POOL, RefundPolicy(cap=1000), now), claim=f"submit-{job.job_id}")


def book(stack: dict[str, str]) -> Book:
    return Book(stack["ledger"])


def envelope(job_id: str, user_id: str = "u-7", plan: str = "pro", credits: int = 12) -> JobEnvelope:
    return JobEnvelope.model_validate(
        {
            "job_id": job_id,
            "user_id": user_id,
            "plan": plan,
            "kind": "video.transcode",
            "credits": credits,
            "submitted_at": "2026-11-22T10:00:00Z",
            "payload": {},
        }
    )


def sqs_event(*records: tuple[str, str]) -> dict[str, Any]:
    """An SQS event of (message id, body) records, shaped as the sample batch's records are."""
    [template, *_] = event("dlq_refund", "batch.json")["Records"]
    return {"Records": [template | {"messageId": mid, "body": body} for mid, body in records]}


def notices(stack: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(body) for body in drain(stack["inbox"])]


def test_given_the_sample_batch_when_invoked_then_refund_duplicate_malformed_and_free_each_end_right(
    stack: dict[str, str],
) -> None:
    refunds = service(stack)
    book(stack).deposit("u-7", 100, "purchase-1", NOW)
    book(stack).reserve(envelope("j-1001"), NOW)
    # The producer reserves every job it sends, an uncharged one for 0 credits.
    free = envelope("j-1003", user_id="u-8", plan="free", credits=5).model_copy(update={"kind": "ai.caption"})
    book(stack).reserve(free, NOW)
    handler = load_handler("dlq_refund")
    result = handler.lambda_handler(event("dlq_refund", "batch.json"), FakeContext())
    assert result == {"batchItemFailures": []}
    summary = refunds.summary()
    assert (summary.refunds, summary.recorded) == (1, 1)  # j-1001 refunded; free j-1003 recorded
    [account] = [a for a in summary.accounts if a.user_id == "u-7"]
    assert (account.balance, account.reserved, account.refunded, account.charged) == (100, 12, 12, 0)
    sent = notices(stack)
    assert sorted((n["job_id"], n["refunded"]) for n in sent) == [("j-1001", 12), ("j-1003", 0)]
    [parked] = parked_items()
    assert parked["message_id"]["S"] == "c4a7e2b3-9f10-4d6e-b2a1-7e5c3d9a8f03"
    assert "malformed job envelope" in parked["reason"]["S"] and parked["body"]["S"].startswith('{"job_id"')


def test_given_sams_generated_sqs_event_when_invoked_then_it_is_handled(stack: dict[str, str]) -> None:
    refunds = service(stack)
    book(stack).deposit("u-9", 10, "p", NOW)
    book(stack).reserve(envelope("j-2001", user_id="u-9", plan="studio", credits=4), NOW)
    result = load_handler("dlq_refund").lambda_handler(
        event("dlq_refund", "sam-generated-receive-message.json"), FakeContext()
    )
    assert result == {"batchItemFailures": []}
    assert refunds.summary().refunds == 1
    [notice] = notices(stack)
    assert (notice["job_id"], notice["user_id"], notice["refunded"]) == ("j-2001", "u-9", 4)


def deliver(handler: ModuleType, evt: dict[str, Any]) -> list[str]:
    """One Lambda invocation; the message ids SQS would deliver again."""
    try:
        result = handler.lambda_handler(evt, FakeContext())
    except BatchProcessingError:
        return [r["messageId"] for r in evt["Records"]]  # every record failed: the whole batch comes back
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def test_given_one_dead_letter_delivered_three_times_at_once_then_it_is_refunded_once_and_notified_once(
    stack: dict[str, str],
) -> None:
    refunds = service(stack)
    book(stack).deposit("u-7", 100, "purchase-1", NOW)
    book(stack).reserve(envelope("j-race"), NOW)
    body = envelope("j-race").to_body()
    evt = sqs_event(("m-race", body))
    # Three execution environments (three fresh handler modules), released together by a barrier.
    handlers = [load_handler("dlq_refund") for _ in range(3)]
    barrier = threading.Barrier(3)

    def run(handler: ModuleType) -> list[str]:
        barrier.wait()
        return deliver(handler, evt)

    with ThreadPoolExecutor(3) as pool:
        retried = [ids for ids in pool.map(run, handlers)]
    # Deliveries that found the notice claimed come back; SQS delivers them again until none does.
    again = [h for h, ids in zip(handlers, retried, strict=True) if ids]
    for _ in range(5):
        if not again:
            break
        again = [h for h in again if deliver(h, evt)]
    assert again == []
    [account] = refunds.summary().accounts
    assert (account.balance, account.refunded, account.charged) == (100, 12, 0)
    assert [n["job_id"] for n in notices(stack)] == ["j-race"]


class SlowTopic:
    """Holds the first publish until told, so that every other delivery races past the transaction."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.first = True
        self.lock = threading.Lock()

    def before_publish(self, **_: Any) -> None:
        with self.lock:
            first, self.first = self.first, False
        if first:
            self.entered.set()
            assert self.release.wait(10)


def test_given_duplicates_racing_past_the_transaction_while_the_winner_publishes_then_one_notice(
    stack: dict[str, str],
) -> None:
    metrics = RecordingMetrics()
    refunds = service(stack, metrics=metrics)
    book(stack).deposit("u-7", 100, "purchase-1", NOW)
    book(stack).reserve(envelope("j-slow"), NOW)
    letter = DeadLetter.model_validate({"messageId": "m-slow", "body": envelope("j-slow").to_body()})
    slow = SlowTopic()
    clients.sns().meta.events.register("before-call.sns.Publish", slow.before_publish)
    with ThreadPoolExecutor(1) as pool:
        winner = pool.submit(refunds.handle, letter, NOW)
        assert slow.entered.wait(10)
        # Both duplicates pass the transaction (it is cancelled for them) while the notice is in flight.
        outcomes = []
        for _ in range(2):
            try:
                outcomes.append(refunds.handle(letter, NOW + timedelta(seconds=1)).result)
            except Exception as error:
                outcomes.append(type(error).__name__)
        slow.release.set()
        assert winner.result().result == "refunded"
    assert outcomes == ["NotificationPending", "NotificationPending"]
    # Delivered again after the winner confirmed: nothing more to do.
    assert refunds.handle(letter, NOW + timedelta(seconds=2)).result == "duplicate"
    assert [n["job_id"] for n in notices(stack)] == ["j-slow"]
    assert metrics.counts[("NoticesPending", None)] == 2 and metrics.counts[("Refunds", None)] == 1


def test_given_the_winner_died_before_publishing_when_the_lease_runs_out_then_one_duplicate_sends(
    stack: dict[str, str],
) -> None:
    refunds = service(stack, lease_seconds=30)
    book(stack).deposit("u-7", 100, "purchase-1", NOW)
    book(stack).reserve(envelope("j-dead"), NOW)
    ledger = DynamoLedger(stack["ledger"])
    # The winner's transaction committed, then its environment died before the publish.
    from queue_scaler.credits.domain.refund import assess, failed_job

    ledger.record_failure(
        failed_job(
            job_id="j-dead",
            pool=POOL,
            user_id="u-7",
            plan="pro",
            kind="video.transcode",
            assessment=assess("pro", 12, RefundPolicy()),
            last_error="dead-lettered",
            now=NOW,
            claim="dead-holder",
        )
    )
    letter = DeadLetter.model_validate({"messageId": "m-dead", "body": envelope("j-dead").to_body()})
    later = NOW + timedelta(seconds=31)
    barrier = threading.Barrier(3)

    def run(_: int) -> str:
        barrier.wait()
        try:
            return "notified" if refunds.handle(letter, later).notified else "quiet"
        except Exception as error:
            return type(error).__name__

    with ThreadPoolExecutor(3) as pool:
        results = sorted(pool.map(run, range(3)))
    # Exactly one took the claim over and sent; the others saw it moved (pending) or already sent.
    assert results.count("notified") == 1 and set(results) <= {"notified", "quiet", "NotificationPending"}
    assert [n["job_id"] for n in notices(stack)] == ["j-dead"]
    assert refunds.summary().accounts[0].refunded == 12


# A thousand records through moto in-process take minutes on a shared 2-core machine: a bound, not a target.
@pytest.mark.timeout(900)
def test_given_1000_records_with_10_percent_malformed_then_good_ones_refund_once_and_only_retries_fail(
    stack: dict[str, str],
) -> None:
    refunds = service(stack)
    users = [f"u-{i}" for i in range(20)]
    for user in users:
        book(stack).deposit(user, 10_000, f"purchase-{user}", NOW)
    records: list[tuple[str, str]] = []
    expected_refund: dict[str, int] = {}
    for i in range(1000):
        if i % 10 == 9:
            records.append(
                (f"m-{i}", ["", "not json", f'{{"job_id": "j-{i}"', json.dumps({"job_id": f"j-{i}"})][i % 4])
            )
            continue
        job = envelope(f"j-{i}", user_id=users[i % 20], credits=1 + i % 50)
        book(stack).reserve(job, NOW)
        expected_refund[job.user_id] = expected_refund.get(job.user_id, 0) + job.credits
        records.append((f"m-{i}", job.to_body()))
    # Forty good records are throttled on their first refund transaction: exactly those must come back.
    throttled = {f"j-{i}" for i in range(0, 400, 10)}
    seen: set[str] = set()

    def throttle(params: dict[str, Any], **_: Any) -> Any:
        body = json.loads(params["body"])
        keys = [item.get("Update", {}).get("Key", {}).get("pk", {}).get("S", "") for item in body["TransactItems"]]
        # Job items are keyed JOB#<pool>#<job>.
        job = next((k.split("#", 2)[-1] for k in keys if k.startswith("JOB#")), None)
        if job in throttled and job not in seen:
            seen.add(job)
            return _Response(400), {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return None

    handler = load_handler("dlq_refund")
    clients.dynamodb().meta.events.register("before-call.dynamodb.TransactWriteItems", throttle)
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        calls.append(event_name)

    for client in (clients.dynamodb(), clients.sns(), clients.sqs()):
        client.meta.events.register("before-call.*.*", count)
    started = time.monotonic()
    failed: list[str] = []
    for start in range(0, 1000, 10):  # Lambda's SQS batch size (10 by default)
        failed += deliver(handler, sqs_event(*records[start : start + 10]))
    # Exactly the throttled records come back (the hook answers before botocore's retries); delivered
    # again, they are refunded, and nothing is refunded twice.
    assert sorted(failed) == sorted(f"m-{j.removeprefix('j-')}" for j in throttled)
    again = {mid: body for mid, body in records if mid in failed}
    for start in range(0, len(failed), 10):
        assert deliver(handler, sqs_event(*[(mid, again[mid]) for mid in failed[start : start + 10]])) == []
    elapsed, handled = time.monotonic() - started, len(calls)
    summary = refunds.summary()
    assert summary.refunds == 900 and summary.problems() == []
    assert {a.user_id: a.refunded for a in summary.accounts} == {u: expected_refund.get(u, 0) for u in users}
    parked = parked_items()
    assert len(parked) == 100 and all("malformed job envelope" in p["reason"]["S"] for p in parked)
    assert len(notices(stack)) == 900
    # The cost that does not depend on the machine: AWS calls. A refund is a read of the job's pointer
    # (JOBID#<job>: which pool's key holds it), a read of the job's fate, its transaction, the notice's
    # publishing mark, the publish and its confirmation; a parked record one write; a throttled first
    # try its two reads and its transaction. (Seconds belong in benchmarks.)
    assert handled == 900 * 6 + 100 + 40 * 3, sorted(set(calls))
    print(f"1000 records (and 40 retried) handled in {elapsed:.1f} s with {handled} AWS calls")


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status


def test_given_the_confirm_write_failing_after_the_publish_then_one_notice_is_sent(stack: dict[str, str]) -> None:
    book(stack).deposit("u-7", 100, "purchase-1", NOW)
    book(stack).reserve(envelope("j-confirm"), NOW)

    def fail_confirm(params: dict[str, Any], **_: Any) -> Any:
        if "#notice = :sent" in json.loads(params["body"]).get("UpdateExpression", ""):
            return _Response(500), {"Error": {"Code": "InternalServerError", "Message": "confirm lost"}}
        return None

    clients.dynamodb().meta.events.register("before-call.dynamodb.UpdateItem", fail_confirm)
    handler = load_handler("dlq_refund")
    evt = sqs_event(("m-confirm", envelope("j-confirm").to_body()))
    assert deliver(handler, evt) == []  # the notice went out: the record is done
    clients.dynamodb().meta.events.unregister("before-call.dynamodb.UpdateItem", fail_confirm)
    # Redelivered anyway (SQS is at least once), within the lease and long after it: no second notice.
    assert deliver(handler, evt) == ["m-confirm"]
    later = service(stack)
    hour_later = datetime.now(UTC) + timedelta(hours=1)  # the handler claimed it at the real time
    assert later.handle(DeadLetter.model_validate(evt["Records"][0]), hour_later).notified is False
    assert [n["job_id"] for n in notices(stack)] == ["j-confirm"]
    assert later.summary().refunds == 1


def test_given_a_600_kb_malformed_body_then_it_is_parked_truncated(stack: dict[str, str]) -> None:
    body = '{"job_id": "j-big", "payload": "' + "x" * 600_000 + '"'  # malformed: never closed
    assert deliver(load_handler("dlq_refund"), sqs_event(("m-big", body))) == []
    [parked] = parked_items()
    assert parked["message_id"]["S"] == "m-big" and "malformed job envelope" in parked["reason"]["S"]
    assert parked["truncated"]["BOOL"] is True and int(parked["body_bytes"]["N"]) == len(body)
    assert body.startswith(parked["body"]["S"]) and len(parked["body_sha256"]["S"]) == 64


def test_given_a_completed_job_when_its_dead_letter_is_replayed_then_it_is_never_refunded(
    stack: dict[str, str],
) -> None:
    book(stack).deposit("u-7", 100, "purchase-1", NOW)
    book(stack).reserve(envelope("j-done"), NOW)
    ledger = DynamoLedger(stack["ledger"])
    done = Attempt(attempt_id="a-1", at=NOW, outcome=AttemptOutcome.COMPLETED)
    lease = Lease(owner="w/a-1", attempt_id="a-1", expires_at=NOW.timestamp() + 30)
    started = ledger.start_attempt(
        POOL, "j-done", done.model_copy(update={"outcome": "started"}), lease, NOW.timestamp()
    )
    assert started.verdict == StartVerdict.START
    assert ledger.end_attempt(POOL, "j-done", done, lease.owner)
    handler = load_handler("dlq_refund")
    for _ in range(3):
        assert deliver(handler, sqs_event(("m-done", envelope("j-done").to_body()))) == []
    summary = service(stack).summary()
    assert summary.refunds == 0 and summary.accounts[0].balance == 88 and notices(stack) == []
    assert ledger.job("j-done").outcome == "completed"  # type: ignore[union-attr]


def test_given_a_job_released_at_every_receive_then_it_goes_back_to_its_queue(stack: dict[str, str]) -> None:
    source = create_queue("queue-scaler-dev-video-pro")  # the sample records' DeadLetterQueueSourceArn
    book(stack).deposit("u-7", 100, "purchase-1", NOW)
    book(stack).reserve(envelope("j-drained"), NOW)
    ledger = DynamoLedger(stack["ledger"])
    for index in range(2):
        attempt = Attempt(attempt_id=f"a-{index}", at=NOW + timedelta(seconds=index), outcome=AttemptOutcome.RELEASED)
        ledger.end_attempt(POOL, "j-drained", attempt, f"w/a-{index}")
    result = deliver(load_handler("dlq_refund"), sqs_event(("m-drained", envelope("j-drained").to_body())))
    assert result == []
    [body] = drain(source)
    assert json.loads(body)["job_id"] == "j-drained"
    assert service(stack).summary().refunds == 0 and notices(stack) == []
    assert ledger.job("j-drained").returns == 1  # type: ignore[union-attr]

"""What only the DynamoDB ledger has, on moto: its failures, its reads, its statement and its scan.

- A DynamoDB call that fails (a 5xx, a connection error, a transaction cancelled by a conflict rather
  than by a condition) raises the domain's error naming the operation, so that an operator reading the
  CLI's message or a log line knows which write of which step failed; it is never read as a refusal.
- Every read is strongly consistent: the producer reads the account it just credited, a retried submit
  the job it just reserved, the refund function the lease a worker just took.
- A user's partition is their statement: one item per deposit, reservation and refund.
- The scan behind `local status` and the demo's summary finds every account and every job by its pool.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.credits.domain.ledger import Attempt, AttemptOutcome, Lease, StartVerdict
from queue_scaler.credits.domain.refund import FailedJob, RefundPolicy, Reservation, reservation
from queue_scaler.shared.errors import AwsCallError, Unavailable
from tests.functional.moto_stack import REGION, create_ledger_table

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
T = NOW.timestamp()
POOL = "video"

Fail = Callable[[str, dict[str, Any]], bool]


class Proxy:
    """moto's DynamoDB client, recording every request, failing those `fail` picks with `error`."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: Fail = lambda name, request: False
        self.error: Exception | None = None

    def _check(self, name: str, request: dict[str, Any]) -> None:
        self.calls.append((name, request))
        if self.error is not None and self.fail(name, request):
            raise self.error

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)

        def call(**request: Any) -> Any:
            self._check(name, request)
            return method(**request)

        return call

    def get_paginator(self, name: str) -> Any:
        proxy, paginator = self, self._real.get_paginator(name)

        class Paginator:
            def paginate(self, **request: Any) -> Any:
                proxy._check(name, request)
                return paginator.paginate(**request)

        return Paginator()


@pytest.fixture
def client(aws: None) -> Proxy:
    return Proxy(boto3.client("dynamodb", region_name=REGION))


@pytest.fixture
def ledger(client: Proxy) -> DynamoLedger:
    return DynamoLedger(create_ledger_table(), client)  # type: ignore[arg-type]


def held(job_id: str = "j-1", credits: int = 5) -> Reservation:
    return reservation(
        job_id=job_id, pool=POOL, user_id="u", plan="pro", kind="video.transcode", credits=credits,
        policy=RefundPolicy(cap=1000), now=NOW,
    )  # fmt: skip


def attempt(owner: str, outcome: AttemptOutcome = AttemptOutcome.STARTED, reason: str | None = None) -> Attempt:
    return Attempt(attempt_id=owner, at=NOW, outcome=outcome, reason=reason)


def lease(owner: str) -> Lease:
    return Lease(owner=owner, attempt_id=owner, expires_at=T + 60)


def failed(job_id: str = "j-1", credits: int = 5) -> FailedJob:
    return FailedJob(
        job_id=job_id, pool=POOL, user_id="u", plan="pro", kind="video.transcode", amount=credits,
        last_error="dead-lettered", failed_at=NOW, claim="notice",
    )  # fmt: skip


def job_item(name: str, request: dict[str, Any]) -> bool:
    """The job's own item (not its attempts): the second write of ending an attempt."""
    return name == "update_item" and request["Key"]["sk"]["S"] == "JOB"


def every(method: str) -> Fail:
    return lambda name, request: name == method


#: (the operation the error names, which request fails, the ledger call), with a job `j-1` reserved
#: (5 credits of user u's 100) and started by receive `w/a`.
CALLS: list[tuple[str, Fail, Callable[[DynamoLedger], object]]] = [
    ("TransactWriteItems(deposit)", every("transact_write_items"), lambda lg: lg.deposit("u", 1, "p-2", NOW)),
    ("GetItem(account)", every("get_item"), lambda lg: lg.account("u")),
    ("TransactWriteItems(reserve)", every("transact_write_items"), lambda lg: lg.reserve(held("j-2"), "c-2")),
    ("UpdateItem(mark sent)", every("update_item"), lambda lg: lg.mark_sent(POOL, "j-1", "c-1", "q", "m-1")),
    (
        "UpdateItem(mark send unknown)",
        every("update_item"),
        lambda lg: lg.mark_send_unknown(POOL, "j-1", "c-1"),
    ),
    ("UpdateItem(take over send)", every("update_item"), lambda lg: lg.take_over_send(POOL, "j-1", "c-1", "c-9", NOW)),
    ("TransactWriteItems(release)", every("transact_write_items"), lambda lg: lg.release(held(), "c-1")),
    ("GetItem(job pointer)", every("get_item"), lambda lg: lg.job("j-1")),
    ("Query(job)", every("query"), lambda lg: lg.job_in(POOL, "j-1")),
    (
        "TransactWriteItems(start attempt)",
        every("transact_write_items"),
        lambda lg: lg.start_attempt(POOL, "j-1", attempt("w/b"), lease("w/b"), T),
    ),
    ("UpdateItem(renew lease)", every("update_item"), lambda lg: lg.renew_lease(POOL, "j-1", lease("w/a"))),
    (
        "UpdateItem(end attempt)",
        every("update_item"),
        lambda lg: lg.end_attempt(POOL, "j-1", attempt("w/a", AttemptOutcome.FAILED), "w/a"),
    ),
    (
        "UpdateItem(complete job)",
        job_item,
        lambda lg: lg.end_attempt(POOL, "j-1", attempt("w/a", AttemptOutcome.COMPLETED), "w/a"),
    ),
    (
        "UpdateItem(cut lease)",
        job_item,
        lambda lg: lg.end_attempt(POOL, "j-1", attempt("w/a", AttemptOutcome.RELEASED), "w/a", T + 5),
    ),
    (
        "UpdateItem(free lease)",
        job_item,
        lambda lg: lg.end_attempt(POOL, "j-1", attempt("w/a", AttemptOutcome.FAILED), "w/a"),
    ),
    ("UpdateItem(return)", every("update_item"), lambda lg: lg.record_return(POOL, "j-1", "m-1", 2, NOW)),
    ("UpdateItem(confirm return)", every("update_item"), lambda lg: lg.confirm_return(POOL, "j-1", "m-1")),
    ("UpdateItem(mark parked)", every("update_item"), lambda lg: lg.mark_parked(POOL, "j-1", "m-1", NOW)),
    ("TransactWriteItems(refund)", every("transact_write_items"), lambda lg: lg.record_failure(failed())),
    (
        "UpdateItem(take over notice)",
        every("update_item"),
        lambda lg: lg.take_over_notice(POOL, "j-1", "notice", "n-2", NOW),
    ),
    ("UpdateItem(start notice)", every("update_item"), lambda lg: lg.start_notice(POOL, "j-1", "notice")),
    ("UpdateItem(reopen notice)", every("update_item"), lambda lg: lg.reopen_notice(POOL, "j-1", "notice")),
    ("UpdateItem(confirm notice)", every("update_item"), lambda lg: lg.confirm_notice(POOL, "j-1", "notice")),
    ("Scan", every("scan"), lambda lg: lg.summary()),
]

ERRORS: dict[str, Exception] = {
    "a 5xx": ClientError(
        {"Error": {"Code": "InternalServerError", "Message": "boom"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
        "Call",
    ),
    "a connection error": EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
}


Call = tuple[str, Fail, Callable[[DynamoLedger], object]]


@pytest.mark.parametrize("kind", list(ERRORS))
@pytest.mark.parametrize("case", CALLS, ids=[c[0] for c in CALLS])
def test_given_dynamodb_failing_then_each_call_raises_unavailable_naming_its_operation(
    ledger: DynamoLedger, client: Proxy, kind: str, case: Call
) -> None:
    operation, fail, call = case
    ledger.deposit("u", 100, "p-1", NOW)
    ledger.reserve(held(), "c-1")
    assert ledger.start_attempt(POOL, "j-1", attempt("w/a"), lease("w/a"), T).verdict == StartVerdict.START
    client.fail, client.error = fail, ERRORS[kind]
    with pytest.raises(Unavailable) as raised:
        call(ledger)
    expected = "EndpointConnectionError" if isinstance(ERRORS[kind], BotoCoreError) else "InternalServerError"
    assert (raised.value.operation, raised.value.code) == (operation, expected)


def test_given_a_transaction_cancelled_by_a_conflict_then_it_is_an_error_not_a_refusal(
    ledger: DynamoLedger, client: Proxy
) -> None:
    """DynamoDB cancels a transaction that meets another one on the same item; no condition failed,
    so it is neither a retried deposit (done once) nor a refusal: the caller retries it."""
    conflict = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}, {"Code": "None"}],
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "TransactWriteItems",
    )
    client.fail, client.error = every("transact_write_items"), conflict
    with pytest.raises(AwsCallError) as raised:
        ledger.deposit("u", 10, "p-1", NOW)
    assert (raised.value.operation, raised.value.code) == (
        "TransactWriteItems(deposit)",
        "TransactionCanceledException",
    )


def test_every_read_is_strongly_consistent(ledger: DynamoLedger, client: Proxy) -> None:
    ledger.deposit("u", 100, "p-1", NOW)
    ledger.account("u")
    ledger.reserve(held(), "c-1")
    ledger.job("j-1")
    ledger.start_attempt(POOL, "j-1", attempt("w/a"), lease("w/a"), T)
    ledger.record_return(POOL, "j-1", "m-1", 2, NOW)  # refused (the job runs): it reads the job back
    ledger.summary()
    reads = [
        (name, request.get("ConsistentRead")) for name, request in client.calls if name in {"get_item", "query", "scan"}
    ]
    assert {name for name, _ in reads} == {"get_item", "query", "scan"}
    assert all(consistent is True for _, consistent in reads), reads


def statement(user_id: str) -> list[tuple[str, str, str, int, str]]:
    items = boto3.client("dynamodb", region_name=REGION).query(
        TableName="ledger",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :tx)",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user_id}"}, ":tx": {"S": "TX#"}},
    )["Items"]
    return [(i["sk"]["S"], i["kind"]["S"], i["reference"]["S"], int(i["credits"]["N"]), i["at"]["S"]) for i in items]


def test_a_users_partition_is_their_statement(ledger: DynamoLedger) -> None:
    at = NOW.isoformat()
    ledger.deposit("u", 100, "p-1", NOW)
    for job_id in ("j-1", "j-2", "j-3"):
        ledger.reserve(held(job_id), f"c-{job_id}")
    assert ledger.release(held("j-3"), "c-j-3")  # its send failed: as if never reserved
    ledger.record_failure(failed("j-2"))
    assert statement("u") == [
        ("TX#deposit#p-1", "deposit", "p-1", 100, at),
        ("TX#refund#j-2", "refund", "j-2", 5, at),
        ("TX#reserve#j-1", "reserve", "j-1", 5, at),
        ("TX#reserve#j-2", "reserve", "j-2", 5, at),
    ]


def test_the_scan_finds_every_account_by_user_and_every_job_by_pool(ledger: DynamoLedger) -> None:
    ledger.deposit("v", 10, "p-v", NOW)
    ledger.deposit("u", 100, "p-u", NOW)
    ledger.reserve(held("j#1"), "c-1")  # a job id may hold '#', the key's separator; a pool name may not
    ledger.reserve(held("j-2").model_copy(update={"pool": "audio"}), "c-2")
    accounts, jobs = ledger.contents()
    assert [(a.user_id, a.balance, a.reserved) for a in accounts] == [("u", 90, 10), ("v", 10, 0)]
    assert sorted((j.pool, j.job_id, j.credits) for j in jobs) == [("audio", "j-2", 5), ("video", "j#1", 5)]


def item(pk: str, sk: str) -> dict[str, Any]:
    """One item as DynamoDB stores it, attribute by attribute (type tags dropped)."""
    found = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName="ledger", Key={"pk": {"S": pk}, "sk": {"S": sk}}
    )
    return {name: next(iter(value.values())) for name, value in found.get("Item", {}).items()}


def test_the_items_are_laid_out_as_the_adapter_documents_them(ledger: DynamoLedger) -> None:
    """Operators query these items by hand, and IAM grants name their keys: the layout is a contract."""
    ledger.deposit("u", 100, "p-1", NOW)
    ledger.reserve(held(), "c-1")
    at = NOW.isoformat()
    assert item("DEPOSIT#p-1", "DEPOSIT") == {"pk": "DEPOSIT#p-1", "sk": "DEPOSIT", "user_id": "u", "at": at}
    assert item("JOBID#j-1", "JOB") == {"pk": "JOBID#j-1", "sk": "JOB", "job_id": "j-1", "pool": POOL}
    assert item(f"JOB#{POOL}#j-1", "JOB") == {
        "pk": f"JOB#{POOL}#j-1",
        "sk": "JOB",
        "job_id": "j-1",
        "pool": POOL,
        "user_id": "u",
        "plan": "pro",
        "kind": "video.transcode",
        "credits": "5",
        "status": "reserved",
        "reserved_at": at,
        "sent": False,
        "send_claim": "c-1",
        "claimed_at": at,
    }
    assert item("USER#u", "ACCOUNT") == {
        "pk": "USER#u", "sk": "ACCOUNT", "user_id": "u", "balance": "95", "deposited": "100", "reserved": "5",
    }  # fmt: skip

"""The credit ledger in DynamoDB: one table, one transaction per movement of credits.

Items (partition key `pk`, sort key `sk`, both strings):
- `USER#<user>` / `ACCOUNT`: the user's running totals: balance, deposited, reserved, refunded.
- `USER#<user>` / `TX#<kind>#<job or reference>`: one credit transaction (deposit, reserve, refund):
  querying a user's partition gives their statement.
- `JOB#<job>` / `JOB`: the job's reservation (status, credits, its send claim and whether SQS took
  the message), then its settlement: completed (completed_at) or failed (refunded, last_error, and
  the user notice: notice, notice_claim, notice_claimed_at); dead letters sent back (returns,
  returned: their message ids) and parked (parked_at).
- `JOB#<job>` / `ATTEMPT#<attempt>`: one receive of the job's message as its worker recorded it:
  at, outcome (started, completed, failed, released), reason, ended_at.

The job item's condition (still reserved, by this user, for this amount) is what makes a refund
happen once per job_id; the refund transaction's own `attribute_not_exists` condition says the same
about the credit transaction.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.adapters import clients
from queue_scaler.adapters.aws_errors import translate
from queue_scaler.domain.ledger import (
    Account,
    Attempt,
    AttemptOutcome,
    JobOutcome,
    JobRecord,
    JobStatus,
    Summary,
    TransactionKind,
)
from queue_scaler.domain.refund import FailedJob, NoticeState, Reservation
from queue_scaler.errors import DuplicateReservation, InsufficientCredits
from queue_scaler.ports import FailureWrite, ReturnWrite, WriteOutcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

ACCOUNT = "ACCOUNT"
JOB = "JOB"
ATTEMPT = "ATTEMPT#"

#: Every attribute a worker may write, on its pool's `JOB#<pool>#<job>` items only, and only with
#: UpdateItem (as such, or inside TransactWriteItems): the run lease and the completion on the `JOB`
#: item, the attempt's record on its `ATTEMPT#<attempt>` item. Never credits, user, plan, the
#: reservation, its send or a refund. The workers' IAM statement (templates/pool.yaml) lists the same
#: names in `dynamodb:Attributes`, with the key attributes `pk` and `sk`; a contract test compares them.
WORKER_WRITABLE_ATTRIBUTES: tuple[str, ...] = (
    # the JOB item: the run lease, then the completion
    "lease_owner",
    "lease_attempt",
    "lease_expires_at",
    "completed_at",
    "completed_attempt",
    # an ATTEMPT# item
    "attempt_id",
    "at",
    "outcome",
    "reason",
    "ended_at",
    "worker",
)
#: The key attributes every item carries (an IAM `dynamodb:Attributes` list names them too).
KEY_ATTRIBUTES: tuple[str, ...] = ("pk", "sk")
_CONDITION_FAILED = "ConditionalCheckFailed"

DEPOSIT = "SET #user_id = :u ADD #balance :c, #deposited :c"
RESERVE = "SET #balance = #balance - :a ADD #reserved :a"
REFUND = "ADD #balance :a, #refunded :a"
RELEASE = "ADD #balance :a, #reserved :minus"
END_ATTEMPT = "SET #attempt_id = :id, #at = if_not_exists(#at, :at), #outcome = :outcome, #ended_at = :now"
COMPLETE_JOB = "SET #status = :completed, #job_id = :job, #completed_at = :now"
#: A completion settles a job still reserved (or one the ledger only knows from its attempts); a job
#: already refunded stays refunded.
COMPLETABLE = "attribute_not_exists(#status) OR #status = :reserved OR #status = :completed"
FAIL_JOB = (
    "SET #status = :failed, #job_id = :job, #user_id = :u, #plan = :plan, #kind = :kind, "
    "#credits = if_not_exists(#credits, :a), #refunded = :a, #failed_at = :at, #last_error = :error, "
    "#notice = :pending, #notice_claim = :claim, #notice_claimed_at = :at"
)


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: int) -> AttributeValueTypeDef:
    return {"N": str(value)}


def _names(expression: str) -> dict[str, str]:
    """Every `#name` of an expression mapped to its attribute: DynamoDB reserves words like plan and status."""
    return {f"#{name}": name for name in re.findall(r"#(\w+)", expression)}


def _user_key(user_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": _s(f"USER#{user_id}"), "sk": _s(ACCOUNT)}


def _job_key(job_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": _s(f"JOB#{job_id}"), "sk": _s(JOB)}


def _tx_item(
    user_id: str, kind: TransactionKind, reference: str, credits: int, at: datetime
) -> dict[str, AttributeValueTypeDef]:
    return {
        "pk": _s(f"USER#{user_id}"),
        "sk": _s(f"TX#{kind}#{reference}"),
        "kind": _s(str(kind)),
        "reference": _s(reference),
        "credits": _n(credits),
        "at": _s(at.isoformat()),
    }


def _reasons(error: ClientError) -> list[dict[str, Any]]:
    """The per-item cancellation reasons of a cancelled transaction, in the order of its items."""
    return list(error.response.get("CancellationReasons", []))  # type: ignore[arg-type]


def _is_cancelled(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


def _failed(reasons: list[dict[str, Any]], index: int) -> bool:
    return len(reasons) > index and reasons[index].get("Code") == _CONDITION_FAILED


class DynamoLedger:
    """Implements ports.Ledger over one DynamoDB table keyed by `pk` and `sk` (both String)."""

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self._table = table
        self._client = client or clients.dynamodb()

    def _transact(self, operation: str, items: list[TransactWriteItemTypeDef]) -> ClientError | None:
        """Run one transaction; returns its cancellation (conditions failed), raises any other failure."""
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if _is_cancelled(error) and any(r.get("Code") == _CONDITION_FAILED for r in _reasons(error)):
                return error
            raise translate(operation, error) from error
        except BotoCoreError as error:
            raise translate(operation, error) from error
        return None

    def deposit(self, user_id: str, credits: int, reference: str, now: datetime) -> None:
        # A cancelled deposit is one whose reference was already deposited: a retried purchase, done once.
        self._transact(
            "TransactWriteItems(deposit)",
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _tx_item(user_id, TransactionKind.DEPOSIT, reference, credits, now),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _user_key(user_id),
                        "UpdateExpression": DEPOSIT,
                        "ExpressionAttributeNames": _names(DEPOSIT),
                        "ExpressionAttributeValues": {":u": _s(user_id), ":c": _n(credits)},
                    }
                },
            ],
        )

    def account(self, user_id: str) -> Account | None:
        try:
            item = self._client.get_item(TableName=self._table, Key=_user_key(user_id), ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise translate("GetItem(account)", error) from error
        return _account(item) if item else None

    def reserve(self, reservation: Reservation, claim: str) -> None:
        job: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **_job_key(reservation.job_id),
                    "job_id": _s(reservation.job_id),
                    "user_id": _s(reservation.user_id),
                    "plan": _s(reservation.plan),
                    "kind": _s(reservation.kind),
                    "credits": _n(reservation.amount),
                    "status": _s(JobStatus.RESERVED),
                    "reserved_at": _s(reservation.at.isoformat()),
                    "sent": {"BOOL": False},
                    "send_claim": _s(claim),
                    "claimed_at": _s(reservation.at.isoformat()),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        items = [job]
        if reservation.amount:
            items += [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _tx_item(
                            reservation.user_id,
                            TransactionKind.RESERVE,
                            reservation.job_id,
                            reservation.amount,
                            reservation.at,
                        ),
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _user_key(reservation.user_id),
                        "UpdateExpression": RESERVE,
                        "ConditionExpression": "#balance >= :a",
                        "ExpressionAttributeNames": _names(RESERVE),
                        "ExpressionAttributeValues": {":a": _n(reservation.amount)},
                    }
                },
            ]
        cancelled = self._transact("TransactWriteItems(reserve)", items)
        if cancelled is None:
            return
        reasons = _reasons(cancelled)
        if _failed(reasons, 0):
            raise DuplicateReservation(f"job {reservation.job_id} already has a reservation")
        raise InsufficientCredits(
            f"user {reservation.user_id} cannot reserve {reservation.amount} credits for job {reservation.job_id}"
        )

    def mark_sent(self, job_id: str, claim: str, queue: str, message_id: str) -> bool:
        return self._update_job(
            "UpdateItem(mark sent)",
            job_id,
            "SET #sent = :true, #queue = :queue, #message_id = :message",
            "#send_claim = :claim",
            {":true": {"BOOL": True}, ":queue": _s(queue), ":message": _s(message_id), ":claim": _s(claim)},
        )

    def take_over_send(self, job_id: str, seen_claim: str, claim: str, now: datetime) -> bool:
        return self._update_job(
            "UpdateItem(take over send)",
            job_id,
            "SET #send_claim = :claim, #claimed_at = :at",
            "#sent = :false AND #send_claim = :seen",
            {":claim": _s(claim), ":at": _s(now.isoformat()), ":false": {"BOOL": False}, ":seen": _s(seen_claim)},
        )

    def release(self, reservation: Reservation, claim: str) -> bool:
        condition = "#send_claim = :claim AND #sent = :false"
        items: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _job_key(reservation.job_id),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": _names(condition),
                    "ExpressionAttributeValues": {":claim": _s(claim), ":false": {"BOOL": False}},
                }
            }
        ]
        if reservation.amount:
            items += [
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": {
                            "pk": _s(f"USER#{reservation.user_id}"),
                            "sk": _s(f"TX#{TransactionKind.RESERVE}#{reservation.job_id}"),
                        },
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _user_key(reservation.user_id),
                        "UpdateExpression": RELEASE,
                        "ExpressionAttributeNames": _names(RELEASE),
                        "ExpressionAttributeValues": {":a": _n(reservation.amount), ":minus": _n(-reservation.amount)},
                    }
                },
            ]
        return self._transact("TransactWriteItems(release)", items) is None

    def start_attempt(self, job_id: str, attempt: Attempt) -> bool:
        condition = "attribute_not_exists(#status) OR #status <> :completed"
        cancelled = self._transact(
            "TransactWriteItems(start attempt)",
            [
                {"Put": {"TableName": self._table, "Item": _attempt_item(job_id, attempt)}},
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": _job_key(job_id),
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": _names(condition),
                        "ExpressionAttributeValues": {":completed": _s(JobStatus.COMPLETED)},
                    }
                },
            ],
        )
        return cancelled is None

    def end_attempt(self, job_id: str, attempt: Attempt) -> None:
        # The first write of an attempt keeps its start time; this one's time is when it ended.
        ended = attempt.at.isoformat()
        update = END_ATTEMPT + (", #reason = :reason" if attempt.reason else "")
        values: dict[str, AttributeValueTypeDef] = {
            ":id": _s(attempt.attempt_id),
            ":at": _s(attempt.at.isoformat()),
            ":outcome": _s(attempt.outcome),
            ":now": _s(ended),
        }
        if attempt.reason:
            values[":reason"] = _s(attempt.reason)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": _s(f"JOB#{job_id}"), "sk": _s(f"{ATTEMPT}{attempt.attempt_id}")},
                UpdateExpression=update,
                ExpressionAttributeNames=_names(update),
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as error:
            raise translate("UpdateItem(end attempt)", error) from error
        if attempt.outcome == AttemptOutcome.COMPLETED:
            # False when the job was refunded meanwhile: the refund stands (the user keeps the result).
            self._update_job(
                "UpdateItem(complete job)",
                job_id,
                COMPLETE_JOB,
                COMPLETABLE,
                {
                    ":completed": _s(JobStatus.COMPLETED),
                    ":reserved": _s(JobStatus.RESERVED),
                    ":job": _s(job_id),
                    ":now": _s(ended),
                },
            )

    def job(self, job_id: str) -> JobRecord | None:
        items: list[dict[str, Any]] = []
        try:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                ConsistentRead=True,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": _s(f"JOB#{job_id}")},
            )
            for page in pages:
                items += page.get("Items", [])
        except (ClientError, BotoCoreError) as error:
            raise translate("Query(job)", error) from error
        return _job_record(job_id, items) if items else None

    def record_return(self, job_id: str, message_id: str, max_returns: int, now: datetime) -> ReturnWrite:
        condition = "NOT contains(#returned, :mid) AND (attribute_not_exists(#returns) OR #returns < :max)"
        update = "ADD #returns :one, #returned :mids SET #returned_at = :at"
        counted = self._update_job(
            "UpdateItem(return)",
            job_id,
            update,
            condition,
            {
                ":mid": _s(message_id),
                ":mids": {"SS": [message_id]},
                ":one": _n(1),
                ":max": _n(max_returns),
                ":at": _s(now.isoformat()),
            },
        )
        if counted:
            return ReturnWrite.COUNTED
        record = self.job(job_id)
        item_returned = record is not None and message_id in record.returned
        return ReturnWrite.ALREADY if item_returned else ReturnWrite.EXHAUSTED

    def mark_parked(self, job_id: str, message_id: str, now: datetime) -> None:
        self._update_job(
            "UpdateItem(mark parked)",
            job_id,
            "SET #job_id = :job, #parked_at = :at, #parked_message = :mid",
            "attribute_not_exists(#status) OR #status = :reserved",
            {
                ":job": _s(job_id),
                ":at": _s(now.isoformat()),
                ":mid": _s(message_id),
                ":reserved": _s(JobStatus.RESERVED),
            },
        )

    def record_failure(self, job: FailedJob) -> FailureWrite:
        values: dict[str, AttributeValueTypeDef] = {
            ":failed": _s(JobStatus.FAILED),
            ":reserved": _s(JobStatus.RESERVED),
            ":u": _s(job.user_id),
            ":a": _n(job.amount),
            ":plan": _s(job.plan),
            ":kind": _s(job.kind),
            ":at": _s(job.failed_at.isoformat()),
            ":error": _s(job.last_error),
            ":pending": _s(NoticeState.PENDING),
            ":claim": _s(job.claim),
            ":job": _s(job.job_id),
        }
        matches = "#status = :reserved AND #user_id = :u AND #credits = :a"
        # A job that reserved nothing may have no reservation at all (a producer that does not reserve
        # for uncharged plans): it is recorded either way.
        unreserved = "attribute_not_exists(pk) OR attribute_not_exists(#status)"
        condition = matches if job.amount else f"{unreserved} OR ({matches})"
        items: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _job_key(job.job_id),
                    "UpdateExpression": FAIL_JOB,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": _names(FAIL_JOB + condition),
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        ]
        if job.amount:
            items += [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _tx_item(job.user_id, TransactionKind.REFUND, job.job_id, job.amount, job.failed_at),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _user_key(job.user_id),
                        "UpdateExpression": REFUND,
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": _names(REFUND),
                        "ExpressionAttributeValues": {":a": _n(job.amount)},
                    }
                },
            ]
        cancelled = self._transact("TransactWriteItems(refund)", items)
        if cancelled is None:
            return FailureWrite(WriteOutcome.WRITTEN)
        reasons = _reasons(cancelled)
        if _failed(reasons, 0):
            return self._explain_job_condition(job, reasons[0].get("Item"))
        if _failed(reasons, 1):
            return FailureWrite(WriteOutcome.REJECTED, reason=f"a refund of job {job.job_id} is already recorded")
        return FailureWrite(WriteOutcome.REJECTED, reason=f"user {job.user_id} has no account")

    def _explain_job_condition(self, job: FailedJob, item: dict[str, Any] | None) -> FailureWrite:
        if not item:
            return FailureWrite(WriteOutcome.REJECTED, reason=f"no reservation for job {job.job_id}")
        status = item.get("status", {}).get("S")
        if status == JobStatus.COMPLETED:
            # It completed between the refund's read of the job and this write: it is served.
            return FailureWrite(WriteOutcome.COMPLETED)
        if status is None:
            return FailureWrite(WriteOutcome.REJECTED, reason=f"no reservation for job {job.job_id}")
        if status == JobStatus.FAILED:
            return FailureWrite(
                WriteOutcome.DUPLICATE,
                stored=FailedJob(
                    job_id=job.job_id,
                    user_id=item["user_id"]["S"],
                    plan=item["plan"]["S"],
                    kind=item["kind"]["S"],
                    amount=int(item["refunded"]["N"]),
                    last_error=item["last_error"]["S"],
                    failed_at=datetime.fromisoformat(item["failed_at"]["S"]),
                    claim=item["notice_claim"]["S"],
                ),
                notice=NoticeState(item["notice"]["S"]),
                claimed_at=datetime.fromisoformat(item["notice_claimed_at"]["S"]),
            )
        owner = item.get("user_id", {}).get("S")
        if owner != job.user_id:
            return FailureWrite(WriteOutcome.REJECTED, reason=f"job {job.job_id} is reserved by another user")
        reserved = int(item.get("credits", {}).get("N", "0"))
        return FailureWrite(
            WriteOutcome.REJECTED,
            reason=f"job {job.job_id} reserved {reserved} credits but its envelope asks to refund {job.amount}",
        )

    def take_over_notice(self, job_id: str, seen_claim: str, claim: str, now: datetime) -> bool:
        return self._update_job(
            "UpdateItem(take over notice)",
            job_id,
            "SET #notice_claim = :claim, #notice_claimed_at = :at",
            "#notice = :pending AND #notice_claim = :seen",
            {
                ":claim": _s(claim),
                ":at": _s(now.isoformat()),
                ":pending": _s(NoticeState.PENDING),
                ":seen": _s(seen_claim),
            },
        )

    def start_notice(self, job_id: str, claim: str) -> bool:
        return self._update_job(
            "UpdateItem(start notice)",
            job_id,
            "SET #notice = :publishing",
            "#notice = :pending AND #notice_claim = :claim",
            {":publishing": _s(NoticeState.PUBLISHING), ":pending": _s(NoticeState.PENDING), ":claim": _s(claim)},
        )

    def reopen_notice(self, job_id: str, claim: str) -> bool:
        return self._update_job(
            "UpdateItem(reopen notice)",
            job_id,
            "SET #notice = :pending",
            "#notice = :publishing AND #notice_claim = :claim",
            {":publishing": _s(NoticeState.PUBLISHING), ":pending": _s(NoticeState.PENDING), ":claim": _s(claim)},
        )

    def confirm_notice(self, job_id: str, claim: str) -> bool:
        return self._update_job(
            "UpdateItem(confirm notice)",
            job_id,
            "SET #notice = :sent",
            "#notice_claim = :claim",
            {":sent": _s(NoticeState.SENT), ":claim": _s(claim)},
        )

    def _update_job(
        self, operation: str, job_id: str, update: str, condition: str, values: dict[str, AttributeValueTypeDef]
    ) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_job_key(job_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(update + condition),
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise translate(operation, error) from error
        except BotoCoreError as error:
            raise translate(operation, error) from error
        return True

    def summary(self) -> Summary:
        """One paginated scan: every account, and every job counted once by its outcome.

        A scan reads the whole table; it serves operators, the demo and `local status`, not a request path.
        """
        accounts: list[Account] = []
        jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        try:
            for page in self._client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
                for item in page.get("Items", []):
                    pk, sk = item["pk"]["S"], item["sk"]["S"]
                    if sk == ACCOUNT:
                        accounts.append(_account(item))
                    elif pk.startswith("JOB#"):
                        jobs[pk.removeprefix("JOB#")].append(item)
        except (ClientError, BotoCoreError) as error:
            raise translate("Scan", error) from error
        accounts.sort(key=lambda a: a.user_id)
        outcomes = Counter(_job_record(job_id, items).outcome for job_id, items in jobs.items())
        return Summary(
            accounts=accounts,
            refunds=outcomes[JobOutcome.REFUNDED],
            recorded=outcomes[JobOutcome.RECORDED],
            outcomes={outcome: outcomes[outcome] for outcome in JobOutcome},
        )


def _attempt_item(job_id: str, attempt: Attempt) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "pk": _s(f"JOB#{job_id}"),
        "sk": _s(f"{ATTEMPT}{attempt.attempt_id}"),
        "attempt_id": _s(attempt.attempt_id),
        "at": _s(attempt.at.isoformat()),
        "outcome": _s(attempt.outcome),
    }
    if attempt.reason:
        item["reason"] = _s(attempt.reason)
    return item


def _job_record(job_id: str, items: list[dict[str, Any]]) -> JobRecord:
    """The job as its items describe it: the JOB item (if any) and its ATTEMPT# items."""
    job: dict[str, Any] = next((i for i in items if i["sk"]["S"] == JOB), {})

    def text(name: str) -> str | None:
        value = job.get(name, {}).get("S")
        return str(value) if value is not None else None

    def number(name: str) -> int:
        return int(job.get(name, {}).get("N", "0"))

    attempts = sorted(
        (
            Attempt(
                attempt_id=i["attempt_id"]["S"],
                at=datetime.fromisoformat(i["at"]["S"]),
                outcome=AttemptOutcome(i["outcome"]["S"]),
                reason=i.get("reason", {}).get("S"),
            )
            for i in items
            if i["sk"]["S"].startswith(ATTEMPT)
        ),
        key=lambda a: a.at,
    )
    status = text("status")
    claimed_at = text("claimed_at")
    return JobRecord(
        job_id=job_id,
        user_id=text("user_id"),
        plan=text("plan"),
        kind=text("kind"),
        credits=number("credits"),
        status=JobStatus(status) if status else None,
        refunded=number("refunded"),
        sent=bool(job.get("sent", {}).get("BOOL", False)),
        send_claim=text("send_claim"),
        claimed_at=datetime.fromisoformat(claimed_at) if claimed_at else None,
        queue=text("queue"),
        parked="parked_at" in job,
        returns=number("returns"),
        returned=frozenset(job.get("returned", {}).get("SS", [])),
        attempts=attempts,
    )


def _account(item: dict[str, Any]) -> Account:
    def number(name: str) -> int:
        return int(item.get(name, {}).get("N", "0"))

    return Account(
        user_id=item["user_id"]["S"],
        balance=number("balance"),
        deposited=number("deposited"),
        reserved=number("reserved"),
        refunded=number("refunded"),
    )

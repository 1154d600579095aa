"""The credit ledger in DynamoDB: one table, one conditional write per transition of a job.

Items (partition key `pk`, sort key `sk`, both strings):
- `USER#<user>` / `ACCOUNT`: the user's running totals: balance, deposited, reserved, refunded.
- `USER#<user>` / `TX#<kind>#<job or reference>`: one credit transaction (deposit, reserve, refund):
  querying a user's partition gives their statement.
- `DEPOSIT#<reference>` / `DEPOSIT`: who a purchase reference credited (user_id): one account, once.
- `JOBID#<job>` / `JOB`: the job's pointer (its pool), written with its reservation: a job id is
  unique across pools, and `jobs show` or a dead letter finds the job from its id alone.
- `JOB#<pool>#<job>` / `JOB`: the job's reservation (status, credits, its send claim and whether SQS
  took the message: sent, or send_unknown when a send's answer was lost), its run lease (lease_owner,
  lease_attempt, lease_expires_at), then one of its two exclusive ends: completed (completed_at,
  completed_attempt, written by the worker that ran it) or failed (status failed, refunded,
  last_error, and the user notice: notice, notice_claim, notice_claimed_at); dead letters sent back
  (returns, returned and returns_sent: their message ids) and parked (parked_at).
- `JOB#<pool>#<job>` / `ATTEMPT#<attempt>`: one receive of the job's message as its worker recorded
  it: at, outcome (started, completed, failed, released), reason, ended_at, worker.

The pool in the job's key is what lets IAM scope a worker to its own pool's jobs
(`dynamodb:LeadingKeys` `JOB#<pool>#*`), and WORKER_WRITABLE_ATTRIBUTES to the lease, completion and
attempt fields (`dynamodb:Attributes`). Every transition is conditional on the job's state
(domain.ledger: `start_verdict`, `may_settle_as_failed`): a job starts only when reserved, not
completed, not failed and not leased by another receive; it completes only when reserved and not yet
completed; it fails (is refunded) only when reserved, not completed and not under a live lease. So
completed and failed exclude each other whichever write comes first.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.credits.domain.ledger import (
    Account,
    Attempt,
    AttemptOutcome,
    JobOutcome,
    JobRecord,
    JobStatus,
    Lease,
    StartVerdict,
    Summary,
    TransactionKind,
    may_settle_as_failed,
    start_verdict,
)
from queue_scaler.credits.domain.refund import DEFAULT_BALANCE_CAP, FailedJob, NoticeState, Reservation
from queue_scaler.credits.ports import FailureWrite, ReturnWrite, StartResult, WriteOutcome
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate
from queue_scaler.shared.errors import BalanceCapExceeded, DuplicateReservation, InsufficientCredits, ReferenceTaken

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
    # Read, never written, by the worker: its start, renewal and completion conditions check that the
    # job is still `reserved`. IAM's `dynamodb:Attributes` covers every attribute a request names, its
    # condition included, and cannot tell a read there from a write, so the grant must list it.
    "status",
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
#: The balance after the deposit stays within the cap (`:room` is the cap minus the deposit).
WITHIN_CAP = "attribute_not_exists(#balance) OR #balance <= :room"
RESERVE = "SET #balance = #balance - :a ADD #reserved :a"
REFUND = "ADD #balance :a, #refunded :a"
RELEASE = "ADD #balance :a, #reserved :minus"
START_ATTEMPT = "SET #attempt_id = :id, #at = :at, #outcome = :outcome, #worker = :owner"
END_ATTEMPT = (
    "SET #attempt_id = :id, #at = if_not_exists(#at, :at), #outcome = :outcome, #ended_at = :now, #worker = :owner"
)
TAKE_LEASE = "SET #lease_owner = :owner, #lease_attempt = :id, #lease_expires_at = :expires"
#: Reserved, neither completed nor failed, and the lease free, expired, or this receive's own.
STARTABLE = (
    "#status = :reserved AND attribute_not_exists(#completed_at) AND (attribute_not_exists(#lease_owner) "
    "OR #lease_owner = :owner OR #lease_expires_at <= :now)"
)
RENEW_LEASE = "SET #lease_expires_at = :expires"
RENEWABLE = "#lease_owner = :owner AND #status = :reserved AND attribute_not_exists(#completed_at)"
FREE_LEASE = "REMOVE #lease_owner, #lease_attempt, #lease_expires_at"
#: An attempt not yet ended (or a prefetched receive never started), or this same end written again.
ATTEMPT_OPEN = "attribute_not_exists(#outcome) OR #outcome = :started OR #outcome = :outcome"
#: A released run's lease, cut to when its process is gone: only by its owner, and never lengthened.
CUT_LEASE = "SET #lease_expires_at = :until"
CUTTABLE = "#lease_owner = :owner AND #lease_expires_at > :until"
COMPLETE_JOB = "SET #completed_at = :now, #completed_attempt = :id " + FREE_LEASE
#: The first completion ends the job; a job already failed (refunded) stays failed.
COMPLETABLE = "#status = :reserved AND attribute_not_exists(#completed_at)"
#: No receive holds a live lease: the job is not running.
NOT_RUNNING = "(attribute_not_exists(#lease_expires_at) OR #lease_expires_at <= :now)"
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


def job_pk(pool: str, job_id: str) -> str:
    """The partition of a job's items: the pool first, so that IAM can scope a worker to its pool."""
    return f"JOB#{pool}#{job_id}"


def _job_key(pool: str, job_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": _s(job_pk(pool, job_id)), "sk": _s(JOB)}


def _reference_key(reference: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": _s(f"DEPOSIT#{reference}"), "sk": _s("DEPOSIT")}


def _pointer_key(job_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": _s(f"JOBID#{job_id}"), "sk": _s(JOB)}


def _epoch(at: datetime) -> float:
    return at.timestamp()


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
    """Implements ports.Ledger (credits, attempts, refunds) over one DynamoDB table keyed by `pk` and `sk`."""

    def __init__(
        self, table: str, client: DynamoDBClient | None = None, *, balance_cap: int = DEFAULT_BALANCE_CAP
    ) -> None:
        self._table = table
        self._client = client or clients.dynamodb()
        self._balance_cap = balance_cap

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

    # Credits: the producer's side -------------------------------------------------------------

    def deposit(self, user_id: str, credits: int, reference: str, now: datetime) -> None:
        # The reference's own item makes it unique across users; a cancelled deposit whose reference is
        # this user's is a retried purchase, done once; another user's is refused (ReferenceTaken).
        # The balance cap is the account update's condition: concurrent deposits cannot pass it together.
        if credits > self._balance_cap:
            raise BalanceCapExceeded(user_id, credits, self._balance_cap)
        cancelled = self._transact(
            "TransactWriteItems(deposit)",
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {**_reference_key(reference), "user_id": _s(user_id), "at": _s(now.isoformat())},
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
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
                        "ConditionExpression": WITHIN_CAP,
                        "ExpressionAttributeNames": _names(DEPOSIT),
                        "ExpressionAttributeValues": {
                            ":u": _s(user_id),
                            ":c": _n(credits),
                            ":room": _n(self._balance_cap - credits),
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ],
        )
        reasons = _reasons(cancelled) if cancelled is not None else []
        if _failed(reasons, 0):
            # The reference was used: a retried deposit (done once, whatever the balance now) or another user's.
            owner = (reasons[0].get("Item") or {}).get("user_id", {}).get("S")
            if owner is not None and owner != user_id:
                raise ReferenceTaken(reference, owner)
            return
        if _failed(reasons, 2):
            balance = (reasons[2].get("Item") or {}).get("balance", {}).get("N")
            raise BalanceCapExceeded(user_id, credits, self._balance_cap, int(balance) if balance else None)

    def account(self, user_id: str) -> Account | None:
        try:
            item = self._client.get_item(TableName=self._table, Key=_user_key(user_id), ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise translate("GetItem(account)", error) from error
        return _account(item) if item else None

    def reserve(self, reservation: Reservation, claim: str) -> None:
        at = reservation.at.isoformat()
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **_pointer_key(reservation.job_id),
                        "job_id": _s(reservation.job_id),
                        "pool": _s(reservation.pool),
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **_job_key(reservation.pool, reservation.job_id),
                        "job_id": _s(reservation.job_id),
                        "pool": _s(reservation.pool),
                        "user_id": _s(reservation.user_id),
                        "plan": _s(reservation.plan),
                        "kind": _s(reservation.kind),
                        "credits": _n(reservation.amount),
                        "status": _s(JobStatus.RESERVED),
                        "reserved_at": _s(at),
                        "sent": {"BOOL": False},
                        "send_claim": _s(claim),
                        "claimed_at": _s(at),
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
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
        if _failed(reasons, 0) or _failed(reasons, 1):
            raise DuplicateReservation(f"job {reservation.job_id} already has a reservation")
        raise InsufficientCredits(
            f"user {reservation.user_id} cannot reserve {reservation.amount} credits for job {reservation.job_id}"
        )

    def mark_sent(self, pool: str, job_id: str, claim: str, queue: str, message_id: str) -> bool:
        return self._update_job(
            "UpdateItem(mark sent)",
            _job_key(pool, job_id),
            "SET #sent = :true, #queue = :queue, #message_id = :message REMOVE #send_unknown",
            "#send_claim = :claim",
            {":true": {"BOOL": True}, ":queue": _s(queue), ":message": _s(message_id), ":claim": _s(claim)},
        )

    def mark_send_unknown(self, pool: str, job_id: str, claim: str) -> bool:
        return self._update_job(
            "UpdateItem(mark send unknown)",
            _job_key(pool, job_id),
            "SET #send_unknown = :true",
            "#send_claim = :claim AND #sent = :false",
            {":true": {"BOOL": True}, ":claim": _s(claim), ":false": {"BOOL": False}},
        )

    def take_over_send(self, pool: str, job_id: str, seen_claim: str, claim: str, now: datetime) -> bool:
        return self._update_job(
            "UpdateItem(take over send)",
            _job_key(pool, job_id),
            "SET #send_claim = :claim, #claimed_at = :at",
            "#sent = :false AND #send_claim = :seen",
            {":claim": _s(claim), ":at": _s(now.isoformat()), ":false": {"BOOL": False}, ":seen": _s(seen_claim)},
        )

    def release(self, reservation: Reservation, claim: str) -> bool:
        # Only an unsent job that no worker ever started is released: a started one was sent after all,
        # and one whose send's outcome is unknown may be queued (its reservation is kept for good).
        condition = (
            "#send_claim = :claim AND #sent = :false AND attribute_not_exists(#send_unknown) "
            "AND attribute_not_exists(#lease_owner) AND #status = :reserved"
        )
        items: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _job_key(reservation.pool, reservation.job_id),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": _names(condition),
                    "ExpressionAttributeValues": {
                        ":claim": _s(claim),
                        ":false": {"BOOL": False},
                        ":reserved": _s(JobStatus.RESERVED),
                    },
                }
            },
            {"Delete": {"TableName": self._table, "Key": _pointer_key(reservation.job_id)}},
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

    def job(self, job_id: str) -> JobRecord | None:
        try:
            pointer = self._client.get_item(TableName=self._table, Key=_pointer_key(job_id), ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise translate("GetItem(job pointer)", error) from error
        item = pointer.get("Item")
        if not item:
            return None
        return self.job_in(item["pool"]["S"], job_id)

    def job_in(self, pool: str, job_id: str) -> JobRecord | None:
        """The job's items in `pool`, None when there are none."""
        items: list[dict[str, Any]] = []
        try:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                ConsistentRead=True,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": _s(job_pk(pool, job_id))},
            )
            for page in pages:
                items += page.get("Items", [])
        except (ClientError, BotoCoreError) as error:
            raise translate("Query(job)", error) from error
        return _job_record(pool, job_id, items) if items else None

    # Attempts: the workers' side (UpdateItem only, WORKER_WRITABLE_ATTRIBUTES only) -------------

    def start_attempt(self, pool: str, job_id: str, attempt: Attempt, lease: Lease, now: float) -> StartResult:
        lease_values: dict[str, AttributeValueTypeDef] = {
            ":owner": _s(lease.owner),
            ":id": _s(lease.attempt_id),
            ":expires": _n_float(lease.expires_at),
            ":now": _n_float(now),
            ":reserved": _s(JobStatus.RESERVED),
        }
        attempt_values: dict[str, AttributeValueTypeDef] = {
            ":id": _s(attempt.attempt_id),
            ":at": _s(attempt.at.isoformat()),
            ":outcome": _s(AttemptOutcome.STARTED),
            ":owner": _s(lease.owner),
        }
        cancelled = self._transact(
            "TransactWriteItems(start attempt)",
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _job_key(pool, job_id),
                        "UpdateExpression": TAKE_LEASE,
                        "ConditionExpression": STARTABLE,
                        "ExpressionAttributeNames": _names(TAKE_LEASE + STARTABLE),
                        "ExpressionAttributeValues": lease_values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _attempt_key(pool, job_id, attempt.attempt_id),
                        "UpdateExpression": START_ATTEMPT,
                        "ExpressionAttributeNames": _names(START_ATTEMPT),
                        "ExpressionAttributeValues": attempt_values,
                    }
                },
            ],
        )
        if cancelled is None:
            return StartResult(StartVerdict.START, lease)
        old = _reasons(cancelled)[0].get("Item") if _failed(_reasons(cancelled), 0) else None
        record = _job_record(pool, job_id, [old]) if old else None
        verdict = start_verdict(record, lease.owner, now)
        # START here means the job changed between the condition and our reading of it: come back later.
        return StartResult(
            StartVerdict.LEASED if verdict == StartVerdict.START else verdict, record.lease if record else None
        )

    def renew_lease(self, pool: str, job_id: str, lease: Lease) -> bool:
        return self._update_job(
            "UpdateItem(renew lease)",
            _job_key(pool, job_id),
            RENEW_LEASE,
            RENEWABLE,
            {":owner": _s(lease.owner), ":expires": _n_float(lease.expires_at), ":reserved": _s(JobStatus.RESERVED)},
        )

    def end_attempt(
        self, pool: str, job_id: str, attempt: Attempt, owner: str, hold_until: float | None = None
    ) -> bool:
        # The first write of an attempt keeps its start time; this one's time is when it ended.
        ended = attempt.at.isoformat()
        update = END_ATTEMPT + (", #reason = :reason" if attempt.reason else "")
        values: dict[str, AttributeValueTypeDef] = {
            ":id": _s(attempt.attempt_id),
            ":at": _s(ended),
            ":outcome": _s(attempt.outcome),
            ":now": _s(ended),
            ":owner": _s(owner),
        }
        if attempt.reason:
            values[":reason"] = _s(attempt.reason)
        values[":started"] = _s(AttemptOutcome.STARTED)
        # An attempt ends once: a release at a drain deadline racing the job's own completion must not
        # turn a completed attempt into a released one (the same outcome again is a retried write).
        if not self._update_job(
            "UpdateItem(end attempt)",
            _attempt_key(pool, job_id, attempt.attempt_id),
            update,
            ATTEMPT_OPEN,
            values,
        ):
            return False
        if attempt.outcome == AttemptOutcome.COMPLETED:
            # False when the job already ended: refunded meanwhile (the refund stands) or completed.
            return self._update_job(
                "UpdateItem(complete job)",
                _job_key(pool, job_id),
                COMPLETE_JOB,
                COMPLETABLE,
                {":reserved": _s(JobStatus.RESERVED), ":id": _s(attempt.attempt_id), ":now": _s(ended)},
            )
        if attempt.outcome != AttemptOutcome.FAILED:
            # Released (a drain): the lease stays, since a job released while it still ran may finish
            # before its process exits and freeing it could run the job twice at once. It is cut to when
            # that process is certainly gone, so that the job runs again then, not a visibility timeout later.
            if hold_until is not None:
                self._update_job(
                    "UpdateItem(cut lease)",
                    _job_key(pool, job_id),
                    CUT_LEASE,
                    CUTTABLE,
                    {":owner": _s(owner), ":until": _n_float(hold_until)},
                )
            return True
        # Failed: free the lease (if still ours) so that the next receive runs at once.
        return self._update_job(
            "UpdateItem(free lease)", _job_key(pool, job_id), FREE_LEASE, "#lease_owner = :owner", {":owner": _s(owner)}
        )

    # Refunds: DlqRefundFunction's side ---------------------------------------------------------

    def record_return(self, pool: str, job_id: str, message_id: str, max_returns: int, now: datetime) -> ReturnWrite:
        condition = (
            "NOT contains(#returned, :mid) AND (attribute_not_exists(#returns) OR #returns < :max) "
            f"AND #status = :reserved AND attribute_not_exists(#completed_at) AND {NOT_RUNNING}"
        )
        update = "ADD #returns :one, #returned :mids SET #returned_at = :at"
        counted = self._update_job(
            "UpdateItem(return)",
            _job_key(pool, job_id),
            update,
            condition,
            {
                ":mid": _s(message_id),
                ":mids": {"SS": [message_id]},
                ":one": _n(1),
                ":max": _n(max_returns),
                ":at": _s(now.isoformat()),
                ":reserved": _s(JobStatus.RESERVED),
                ":now": _n_float(_epoch(now)),
            },
        )
        if counted:
            return ReturnWrite.COUNTED
        record = self.job_in(pool, job_id)
        if record is not None and message_id in record.returned:
            return ReturnWrite.ALREADY if message_id in record.returns_sent else ReturnWrite.UNCONFIRMED
        if record is not None and not may_settle_as_failed(record, _epoch(now)):
            return ReturnWrite.RUNNING
        return ReturnWrite.EXHAUSTED

    def confirm_return(self, pool: str, job_id: str, message_id: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_job_key(pool, job_id),
                UpdateExpression="ADD #returns_sent :mids",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#returns_sent": "returns_sent"},
                ExpressionAttributeValues={":mids": {"SS": [message_id]}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise translate("UpdateItem(confirm return)", error) from error
        except BotoCoreError as error:
            raise translate("UpdateItem(confirm return)", error) from error

    def mark_parked(self, pool: str, job_id: str, message_id: str, now: datetime) -> None:
        self._update_job(
            "UpdateItem(mark parked)",
            _job_key(pool, job_id),
            "SET #parked_at = :at, #parked_message = :mid",
            "#status = :reserved AND attribute_not_exists(#completed_at)",
            {":at": _s(now.isoformat()), ":mid": _s(message_id), ":reserved": _s(JobStatus.RESERVED)},
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
            ":now": _n_float(_epoch(job.failed_at)),
            ":error": _s(job.last_error),
            ":pending": _s(NoticeState.PENDING),
            ":claim": _s(job.claim),
            ":job": _s(job.job_id),
        }
        # Still reserved by this user for this amount, not completed, and not running under a live lease.
        condition = (
            "#status = :reserved AND #user_id = :u AND #credits = :a AND attribute_not_exists(#completed_at) "
            f"AND {NOT_RUNNING}"
        )
        items: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _job_key(job.pool, job.job_id),
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
        record = _job_record(job.pool, job.job_id, [item]) if item else None
        if item is None or record is None or record.status is None:
            return FailureWrite(WriteOutcome.REJECTED, reason=f"no reservation for job {job.job_id}")
        if record.status == JobStatus.COMPLETED:
            # It completed between the refund's read of the job and this write: it is served.
            return FailureWrite(WriteOutcome.COMPLETED)
        if record.status == JobStatus.FAILED:
            return FailureWrite(
                WriteOutcome.DUPLICATE,
                stored=FailedJob(
                    job_id=job.job_id,
                    pool=job.pool,
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
        if record.user_id != job.user_id:
            return FailureWrite(WriteOutcome.REJECTED, reason=f"job {job.job_id} is reserved by another user")
        if record.credits != job.amount:
            return FailureWrite(
                WriteOutcome.REJECTED,
                reason=f"job {job.job_id} reserved {record.credits} credits but its envelope asks "
                f"to refund {job.amount}",
            )
        # Reserved by this user for this amount: only a live lease stood in the way.
        return FailureWrite(WriteOutcome.RUNNING, reason=f"job {job.job_id} is running under a live lease")

    def take_over_notice(self, pool: str, job_id: str, seen_claim: str, claim: str, now: datetime) -> bool:
        return self._update_job(
            "UpdateItem(take over notice)",
            _job_key(pool, job_id),
            "SET #notice_claim = :claim, #notice_claimed_at = :at",
            "#notice = :pending AND #notice_claim = :seen",
            {
                ":claim": _s(claim),
                ":at": _s(now.isoformat()),
                ":pending": _s(NoticeState.PENDING),
                ":seen": _s(seen_claim),
            },
        )

    def start_notice(self, pool: str, job_id: str, claim: str) -> bool:
        return self._update_job(
            "UpdateItem(start notice)",
            _job_key(pool, job_id),
            "SET #notice = :publishing",
            "#notice = :pending AND #notice_claim = :claim",
            {":publishing": _s(NoticeState.PUBLISHING), ":pending": _s(NoticeState.PENDING), ":claim": _s(claim)},
        )

    def reopen_notice(self, pool: str, job_id: str, claim: str) -> bool:
        return self._update_job(
            "UpdateItem(reopen notice)",
            _job_key(pool, job_id),
            "SET #notice = :pending",
            "#notice = :publishing AND #notice_claim = :claim",
            {":publishing": _s(NoticeState.PUBLISHING), ":pending": _s(NoticeState.PENDING), ":claim": _s(claim)},
        )

    def confirm_notice(self, pool: str, job_id: str, claim: str) -> bool:
        return self._update_job(
            "UpdateItem(confirm notice)",
            _job_key(pool, job_id),
            "SET #notice = :sent",
            "#notice_claim = :claim",
            {":sent": _s(NoticeState.SENT), ":claim": _s(claim)},
        )

    def _update_job(
        self,
        operation: str,
        key: dict[str, AttributeValueTypeDef],
        update: str,
        condition: str,
        values: dict[str, AttributeValueTypeDef],
    ) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
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
        """Every account, and every job counted once by its outcome (one scan: see `contents`)."""
        accounts, jobs = self.contents()
        outcomes = Counter(job.outcome for job in jobs)
        return Summary(
            accounts=accounts,
            refunds=outcomes[JobOutcome.REFUNDED],
            recorded=outcomes[JobOutcome.RECORDED],
            outcomes={outcome: outcomes[outcome] for outcome in JobOutcome},
        )

    def contents(self) -> tuple[list[Account], list[JobRecord]]:
        """One paginated scan: every account (by user) and every job the ledger holds.

        A scan reads the whole table; it serves operators, the demo and `local status`, not a request path.
        """
        accounts: list[Account] = []
        jobs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        try:
            for page in self._client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
                for item in page.get("Items", []):
                    pk, sk = item["pk"]["S"], item["sk"]["S"]
                    if sk == ACCOUNT:
                        accounts.append(_account(item))
                    elif pk.startswith("JOB#"):
                        pool, _, job_id = pk.removeprefix("JOB#").partition("#")
                        jobs[(pool, job_id)].append(item)
        except (ClientError, BotoCoreError) as error:
            raise translate("Scan", error) from error
        accounts.sort(key=lambda a: a.user_id)
        return accounts, [_job_record(pool, job_id, items) for (pool, job_id), items in sorted(jobs.items())]


def _n_float(value: float) -> AttributeValueTypeDef:
    # Milliseconds are enough for a lease, and keep the number's text short and exact.
    return {"N": f"{value:.3f}"}


def _attempt_key(pool: str, job_id: str, attempt_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": _s(job_pk(pool, job_id)), "sk": _s(f"{ATTEMPT}{attempt_id}")}


def _job_record(pool: str, job_id: str, items: list[dict[str, Any]]) -> JobRecord:
    """The job as its items describe it: the JOB item (if any) and its ATTEMPT# items.

    A job with `completed_at` is COMPLETED whatever its stored status (the worker writes only the
    completion fields, never the status)."""
    job: dict[str, Any] = next((i for i in items if i.get("sk", {}).get("S", JOB) == JOB), {})

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
            if i.get("sk", {}).get("S", "").startswith(ATTEMPT)
        ),
        key=lambda a: a.at,
    )
    status = text("status")
    claimed_at = text("claimed_at")
    completed_at = text("completed_at")
    owner, lease_attempt, expires = text("lease_owner"), text("lease_attempt"), job.get("lease_expires_at", {}).get("N")
    lease = (
        Lease(owner=owner, attempt_id=lease_attempt or "", expires_at=float(expires))
        if owner is not None and expires is not None
        else None
    )
    if completed_at is not None and status == JobStatus.RESERVED:
        status = JobStatus.COMPLETED
    return JobRecord(
        job_id=job_id,
        pool=pool,
        user_id=text("user_id"),
        plan=text("plan"),
        kind=text("kind"),
        credits=number("credits"),
        status=JobStatus(status) if status else None,
        refunded=number("refunded"),
        sent=bool(job.get("sent", {}).get("BOOL", False)),
        send_unknown=bool(job.get("send_unknown", {}).get("BOOL", False)),
        send_claim=text("send_claim"),
        claimed_at=datetime.fromisoformat(claimed_at) if claimed_at else None,
        queue=text("queue"),
        parked="parked_at" in job,
        returns=number("returns"),
        returned=frozenset(job.get("returned", {}).get("SS", [])),
        returns_sent=frozenset(job.get("returns_sent", {}).get("SS", [])),
        attempts=attempts,
        lease=lease,
        completed_at=datetime.fromisoformat(completed_at) if completed_at else None,
        completed_attempt=text("completed_attempt"),
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

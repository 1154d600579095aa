"""The credit ledger in DynamoDB: one table, one transaction per movement of credits.

Items (partition key `pk`, sort key `sk`, both strings):
- `USER#<user>` / `ACCOUNT`: the user's running totals: balance, deposited, reserved, refunded.
- `USER#<user>` / `TX#<kind>#<job or reference>`: one credit transaction (deposit, reserve, refund):
  querying a user's partition gives their statement.
- `JOB#<job>` / `JOB`: the job's reservation, then its failure: status, credits, refunded,
  last_error, and its user notice (notice, notice_claim, notice_claimed_at).

The job item's condition (still reserved, by this user, for this amount) is what makes a refund
happen once per job_id; the refund transaction's own `attribute_not_exists` condition says the same
about the credit transaction.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.adapters import clients
from queue_scaler.adapters.aws_errors import translate
from queue_scaler.domain.ledger import Account, JobStatus, Summary, TransactionKind
from queue_scaler.domain.refund import FailedJob, NoticeState, Reservation
from queue_scaler.errors import DuplicateReservation, InsufficientCredits
from queue_scaler.ports import FailureWrite, WriteOutcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

ACCOUNT = "ACCOUNT"
JOB = "JOB"
_CONDITION_FAILED = "ConditionalCheckFailed"

DEPOSIT = "SET #user_id = :u ADD #balance :c, #deposited :c"
RESERVE = "SET #balance = #balance - :a ADD #reserved :a"
REFUND = "ADD #balance :a, #refunded :a"
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

    def reserve(self, reservation: Reservation) -> None:
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
        condition = matches if job.amount else f"attribute_not_exists(pk) OR ({matches})"
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
        return self._update_notice(
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

    def confirm_notice(self, job_id: str, claim: str) -> bool:
        return self._update_notice(
            "UpdateItem(confirm notice)",
            job_id,
            "SET #notice = :sent",
            "#notice_claim = :claim",
            {":sent": _s(NoticeState.SENT), ":claim": _s(claim)},
        )

    def _update_notice(
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
        """One paginated scan: every account, and the failed jobs counted as refunded or recorded.

        A scan reads the whole table; it serves operators, the demo and `local status`, not a request path.
        """
        accounts: list[Account] = []
        refunds = recorded = 0
        try:
            pages = self._client.get_paginator("scan").paginate(
                TableName=self._table,
                ConsistentRead=True,
                FilterExpression="sk = :account OR (sk = :job AND #status = :failed)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":account": _s(ACCOUNT), ":job": _s(JOB), ":failed": _s(JobStatus.FAILED)},
            )
            for page in pages:
                for item in page.get("Items", []):
                    if item["sk"].get("S") == ACCOUNT:
                        accounts.append(_account(item))
                    elif int(item.get("refunded", {}).get("N", "0")):
                        refunds += 1
                    else:
                        recorded += 1
        except (ClientError, BotoCoreError) as error:
            raise translate("Scan", error) from error
        accounts.sort(key=lambda a: a.user_id)
        return Summary(accounts=accounts, refunds=refunds, recorded=recorded)


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

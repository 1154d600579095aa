"""Lifecycle actions in DynamoDB: one item per instance and action, each change guarded by its version.

Keys: `instance_id` (partition) and `action` (sort: `launch#<token>`, `terminate#<token>`, `spot`,
`rebalance`). The create condition is what makes a duplicate event harmless: only the first
delivery of a token records it and starts its command; the version condition keeps two
invocations advancing the same action (a status event racing the reconciler) from both acting on
the same state. `expires_at` is the table's TTL attribute: finished actions fade away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from queue_scaler.lifecycle.domain.lifecycle import ActionState, LifecycleAction
from queue_scaler.lifecycle.ports import PendingActions
from queue_scaler.scaling.domain.fleet import LEAVING_KINDS, LeavingRecord
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate
from queue_scaler.shared.errors import ActionConflict, Throttled

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def _value(value: object) -> AttributeValueTypeDef:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return {"S": str(value)}
    return {"N": str(int(value)) if float(value).is_integer() else repr(float(value))}


def _conflict(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoActionStore:
    """Implements ports.ActionStore over one DynamoDB table."""

    def __init__(self, table: str, retention_seconds: float, client: DynamoDBClient | None = None) -> None:
        self._table = table
        self._retention = retention_seconds
        self._client = client or clients.dynamodb()

    def _item(self, action: LifecycleAction, version: int) -> dict[str, AttributeValueTypeDef]:
        fields = action.model_dump(mode="json", exclude_none=True) | {"version": version}
        item = {name: _value(value) for name, value in fields.items()}
        item["action"] = {"S": action.key}
        ended = action.completed_at if action.completed_at is not None else action.deadline
        item["expires_at"] = _value(int(ended + self._retention))
        return item

    @staticmethod
    def _action(item: dict[str, Any]) -> LifecycleAction:
        fields = {
            name: next(iter(value.values())) for name, value in item.items() if name not in ("action", "expires_at")
        }
        return LifecycleAction.model_validate(fields)

    def create(self, action: LifecycleAction) -> LifecycleAction | None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._item(action, 1),
                ConditionExpression="attribute_not_exists(instance_id)",
            )
        except ClientError as error:
            if _conflict(error):
                return None
            raise translate("PutItem", error) from error
        except BotoCoreError as error:
            raise translate("PutItem", error) from error
        return action.model_copy(update={"version": 1})

    def get(self, instance_id: str, key: str) -> LifecycleAction | None:
        try:
            found = self._client.get_item(
                TableName=self._table,
                Key={"instance_id": {"S": instance_id}, "action": {"S": key}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise translate("GetItem", error) from error
        item = found.get("Item")
        return self._action(item) if item else None

    def for_instance(self, instance_id: str) -> list[LifecycleAction]:
        return [
            self._action(item)
            for item in self._pages(
                "Query",
                KeyConditionExpression="instance_id = :id",
                ExpressionAttributeValues={":id": {"S": instance_id}},
            )
        ]

    def pending(self) -> PendingActions:
        # A scan: the table holds only the fleet's recent actions (TTL), and the reconciler reads it once a minute.
        items = self._pages(
            "Scan",
            FilterExpression="#state = :pending",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":pending": {"S": str(ActionState.PENDING)}},
        )
        return _readable(items, self._action)

    def save(self, action: LifecycleAction) -> LifecycleAction:
        version = action.version + 1
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._item(action, version),
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": _value(action.version)},
            )
        except ClientError as error:
            if _conflict(error):
                raise ActionConflict(action.instance_id, action.key) from error
            raise translate("PutItem", error) from error
        except BotoCoreError as error:
            raise translate("PutItem", error) from error
        return action.model_copy(update={"version": version})

    def _pages(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        call = self._client.query if operation == "Query" else self._client.scan
        start: dict[str, Any] | None = None
        while True:
            page_args = kwargs | {"TableName": self._table, "ConsistentRead": True}
            if start:
                page_args["ExclusiveStartKey"] = start
            try:
                page = call(**page_args)
            except (ClientError, BotoCoreError) as error:
                raise translate(operation, error) from error
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return


def _readable(items: Iterator[dict[str, Any]], read: Callable[[dict[str, Any]], LifecycleAction]) -> PendingActions:
    """Each item read as an action; one that is not (hand-edited, an older schema) is set aside with why,
    so that it never stops the reconciler from advancing the others."""
    actions: list[LifecycleAction] = []
    unreadable: list[str] = []
    for item in items:
        try:
            actions.append(read(item))
        except (ValidationError, ValueError, TypeError, KeyError, StopIteration, AttributeError) as error:
            key = f"{_text(item.get('instance_id'))}/{_text(item.get('action'))}"
            unreadable.append(f"{key}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    return PendingActions(actions, unreadable)


def _text(value: object) -> str:
    """An item attribute's value for a log line, whatever its type."""
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value.values())))
    return "?"


# --- The scaler's read: leaving instances, by key, never a scan -------------------------------------

#: BatchGetItem reads at most 100 keys a call; unprocessed keys (throttling) are retried this often.
KEYS_PER_CALL = 100
UNPROCESSED_RETRIES = 3


class DynamoLeavingRecords:
    """Implements ports.LeavingInstances: the records of the given instances' Spot and rebalance
    actions (fixed sort keys, domain.fleet.LEAVING_KINDS), read with BatchGetItem.

    The cost follows the fleet, not the table: two keys per instance still counted in desired, in
    calls of 100 keys, and no call at all for a pool at zero. Expiry is the domain's to judge.
    """

    def __init__(self, table: str, client: DynamoDBClient | None = None, sleep: Any = time.sleep) -> None:
        self._table = table
        self._client = client or clients.dynamodb()
        self._sleep = sleep

    def records(self, instance_ids: Sequence[str]) -> list[LeavingRecord]:
        keys = [
            {"instance_id": {"S": instance_id}, "action": {"S": kind}}
            for instance_id in dict.fromkeys(instance_ids)
            for kind in LEAVING_KINDS
        ]
        found: list[LeavingRecord] = []
        for start in range(0, len(keys), KEYS_PER_CALL):
            found += self._batch(keys[start : start + KEYS_PER_CALL])
        return found

    def _batch(self, keys: list[dict[str, Any]]) -> list[LeavingRecord]:
        found: list[LeavingRecord] = []
        pending: list[dict[str, Any]] = keys
        for attempt in range(UNPROCESSED_RETRIES + 1):
            try:
                response = self._client.batch_get_item(
                    RequestItems={
                        self._table: {
                            "Keys": pending,
                            "ProjectionExpression": "instance_id, #kind, expires_at",
                            "ExpressionAttributeNames": {"#kind": "kind"},
                        }
                    }
                )
            except (ClientError, BotoCoreError) as error:
                raise translate("BatchGetItem", error) from error
            responses: dict[str, Any] = dict(response.get("Responses", {}))
            for item in responses.get(self._table, []):
                found.append(
                    LeavingRecord(
                        instance_id=item["instance_id"]["S"],
                        kind=item["kind"]["S"],
                        expires_at=float(item["expires_at"]["N"]),
                    )
                )
            unprocessed: dict[str, Any] = dict(response.get("UnprocessedKeys", {}))
            pending = list(unprocessed.get(self._table, {}).get("Keys", []))
            if not pending:
                return found
            if attempt < UNPROCESSED_RETRIES:
                # AWS's advice for unprocessed keys: retry them with exponential backoff.
                self._sleep(0.05 * 2**attempt)
        # Never a silent partial answer: an instance left unread could be leaving.
        raise Throttled("BatchGetItem", "UnprocessedKeys")

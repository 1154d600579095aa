"""Scaler history in DynamoDB: one item per pool, replaced with an optimistic-lock condition.

The version condition is what keeps two overlapping ticks (an alarm-triggered invocation racing the
scheduled one) from both acting on the same history: the second writer's condition fails and it
stands down without touching the group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.scaling.domain.models import History, Recommendation, ScaleEvent, WorkSample
from queue_scaler.scaling.ports import VersionedHistory
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate
from queue_scaler.shared.errors import ConcurrentUpdate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def _number(value: float) -> AttributeValueTypeDef:
    return {"N": repr(float(value)) if not float(value).is_integer() else str(int(value))}


def _recommendation(entry: dict[str, Any]) -> Recommendation:
    return Recommendation(
        at=float(entry["at"]["N"]),
        desired=int(entry["desired"]["N"]),
        # Items written before `held` existed have none: all of such a recommendation is remembered.
        held=float(entry.get("held", {"N": "0"})["N"]),
    )


def _scale_event(entry: dict[str, Any]) -> ScaleEvent:
    return ScaleEvent(at=float(entry["at"]["N"]), change=int(entry["change"]["N"]))


def _sample(entry: dict[str, Any]) -> WorkSample:
    return WorkSample(at=float(entry["at"]["N"]), work=int(entry["work"]["N"]), in_flight=int(entry["in_flight"]["N"]))


def _entries[T](item: dict[str, Any], name: str, parse: Callable[[dict[str, Any]], T]) -> tuple[list[T], int]:
    """The list attribute `name` parsed entry by entry, and how many entries could not be parsed.

    An entry missing a field or holding a value out of range (written by hand, or by an older or newer
    version) is skipped rather than failing the load: one bad entry must not freeze its pool's scaling.
    What is skipped is dropped at the next write of the history.
    """
    parsed: list[T] = []
    skipped = 0
    entries = item.get(name, {}).get("L", [])
    for entry in entries if isinstance(entries, list) else []:
        try:
            parsed.append(parse(entry["M"]))
        except (KeyError, TypeError, ValueError):  # pydantic's ValidationError is a ValueError
            skipped += 1
    return parsed, skipped


class DynamoHistoryStore:
    """Implements ports.HistoryStore over a table whose partition key is `pool` (String)."""

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self._table = table
        self._client = client or clients.dynamodb()

    def load(self, pool: str) -> VersionedHistory:
        try:
            response = self._client.get_item(TableName=self._table, Key={"pool": {"S": pool}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise translate(f"GetItem on table {self._table}", error) from error
        item = response.get("Item")
        if not item:
            return VersionedHistory(History(), 0)
        recommendations, skipped = _entries(item, "recommendations", _recommendation)
        events, skipped_events = _entries(item, "scale_events", _scale_event)
        samples, skipped_samples = _entries(item, "samples", _sample)
        history = History(recommendations=recommendations, scale_events=events, samples=samples)
        return VersionedHistory(history, int(item["version"]["N"]), skipped + skipped_events + skipped_samples)

    def save(self, pool: str, history: History, expected_version: int) -> int:
        version = expected_version + 1
        item: dict[str, AttributeValueTypeDef] = {
            "pool": {"S": pool},
            "version": {"N": str(version)},
            "recommendations": {
                "L": [
                    {"M": {"at": _number(r.at), "desired": _number(r.desired), "held": _number(r.held)}}
                    for r in history.recommendations
                ]
            },
            "scale_events": {
                "L": [{"M": {"at": _number(e.at), "change": _number(e.change)}} for e in history.scale_events]
            },
            "samples": {
                "L": [
                    {"M": {"at": _number(w.at), "work": _number(w.work), "in_flight": _number(w.in_flight)}}
                    for w in history.samples
                ]
            },
        }
        if expected_version == 0:
            condition = {
                "ConditionExpression": "attribute_not_exists(#pool)",
                "ExpressionAttributeNames": {"#pool": "pool"},
            }
        else:
            condition = {
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)  # type: ignore[arg-type]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(pool) from error
            raise translate(f"PutItem on table {self._table}", error) from error
        except BotoCoreError as error:
            raise translate(f"PutItem on table {self._table}", error) from error
        return version

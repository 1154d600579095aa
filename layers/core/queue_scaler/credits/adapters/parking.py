"""Parked dead letters in DynamoDB: one item per SQS message id, with the body and the reason.

The body is kept whole up to 256 KiB (domain.refund.parked_record), always with its length and SHA-256
and whether it was truncated, so that an item never exceeds DynamoDB's 400 KB and parking never fails
on size.

Keyed by message id, so a record delivered twice is parked once. Items never expire: a parked record
is money a person has to look at (the ParkedRecords alarm pages on-call), never something to drop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.credits.domain.refund import ParkedRecord
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


class DynamoParking:
    """Implements ports.Parking over a table whose partition key is `message_id` (String)."""

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self._table = table
        self._client = client or clients.dynamodb()

    def park(self, record: ParkedRecord) -> None:
        item: dict[str, AttributeValueTypeDef] = {
            "message_id": {"S": record.message_id},
            "body": {"S": record.body},
            "reason": {"S": record.reason},
            "parked_at": {"S": record.parked_at.isoformat()},
            "body_bytes": {"N": str(record.body_bytes)},
            "body_sha256": {"S": record.body_sha256},
            "truncated": {"BOOL": record.truncated},
        }
        if record.source_queue:
            item["source_queue"] = {"S": record.source_queue}
        if record.job_id:
            item["job_id"] = {"S": record.job_id}
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as error:
            raise translate("PutItem(park)", error) from error

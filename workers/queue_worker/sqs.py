"""The worker's only door to SQS: receive, delete and change visibility, with bounded calls.

Every call goes through one botocore client configured with connect and read timeouts and a bounded
number of retries; the endpoint comes from the standard AWS_* environment (AWS_ENDPOINT_URL
included), which boto3 reads itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from queue_worker.settings import MAX_BATCH, WorkerSettings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as received: what the worker needs to run, extend, delete or release it."""

    queue_index: int
    queue_url: str
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: float | None  # epoch seconds, from SentTimestamp


def make_client(settings: WorkerSettings) -> SQSClient:
    """An SQS client whose every call is bounded in time and retries."""
    config = Config(
        connect_timeout=5,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "max_attempts": 3},
        # Slots delete concurrently while the poller and the heartbeat hold their own connections.
        max_pool_connections=settings.worker_slots + 4,
    )
    return boto3.client("sqs", config=config)


def queue_name(url: str) -> str:
    """The queue's name: the last path segment of its URL."""
    return url.rstrip("/").rsplit("/", 1)[-1]


class Queues:
    """SQS operations on the worker's queues, identified by their index in QUEUE_URLS."""

    def __init__(self, client: SQSClient, urls: list[str]) -> None:
        self._client = client
        self.urls = urls

    def receive(self, index: int, max_messages: int, wait_seconds: int, visibility: int) -> list[ReceivedMessage]:
        """Up to `max_messages` messages from queue `index`, hidden for `visibility` seconds."""
        url = self.urls[index]
        answer = self._client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
        )
        received = []
        for message in answer.get("Messages", []):
            attributes = message.get("Attributes", {})
            sent = attributes.get("SentTimestamp")
            received.append(
                ReceivedMessage(
                    queue_index=index,
                    queue_url=url,
                    message_id=message["MessageId"],
                    receipt_handle=message["ReceiptHandle"],
                    body=message.get("Body", ""),
                    receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
                    sent_at=int(sent) / 1000 if sent else None,
                )
            )
        return received

    def delete(self, messages: list[ReceivedMessage]) -> dict[str, str]:
        """Delete messages of succeeded jobs (batched per queue); returns {receipt handle: why} failed."""
        failed: dict[str, str] = {}
        for url, chunk in _chunks(messages):
            try:
                answer = self._client.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": key, "ReceiptHandle": m.receipt_handle} for key, m in chunk.items()],
                )
            except (BotoCoreError, ClientError) as error:
                failed |= {m.receipt_handle: repr(error) for m in chunk.values()}
                continue
            failed |= {chunk[f["Id"]].receipt_handle: f.get("Code", "unknown") for f in answer.get("Failed", [])}
        return failed

    def set_visibility(self, messages: list[ReceivedMessage], seconds: int) -> list[tuple[ReceivedMessage, str]]:
        """Set the visibility timeout of `messages` (batched per queue); returns those that failed, why."""
        failed: list[tuple[ReceivedMessage, str]] = []
        for url, chunk in _chunks(messages):
            try:
                answer = self._client.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": key, "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                        for key, m in chunk.items()
                    ],
                )
            except (BotoCoreError, ClientError) as error:
                # The caller decides per message; one bad call must not stop the other queues.
                failed += [(m, repr(error)) for m in chunk.values()]
                continue
            failed += [(chunk[f["Id"]], f.get("Code", "unknown")) for f in answer.get("Failed", [])]
        return failed


def _chunks(messages: list[ReceivedMessage]) -> Iterator[tuple[str, dict[str, ReceivedMessage]]]:
    """(queue URL, {batch entry id: message}) groups of at most one SQS batch each."""
    for url in dict.fromkeys(m.queue_url for m in messages):
        batch = [m for m in messages if m.queue_url == url]
        for start in range(0, len(batch), MAX_BATCH):
            yield url, {str(i): m for i, m in enumerate(batch[start : start + MAX_BATCH])}

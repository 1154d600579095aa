"""SQS backlog: one GetQueueAttributes per queue, queues read in parallel."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Lock
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.scaling.domain.models import QueueObservation
from queue_scaler.scaling.domain.pool import QueueConfig
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.adapters.aws_errors import translate
from queue_scaler.shared.errors import AwsCallError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class SqsQueueMetrics:
    """Implements ports.QueueMetrics over SQS."""

    def __init__(self, client: SQSClient | None = None, max_parallel: int = 10) -> None:
        self._client = client or clients.sqs()
        self._max_parallel = max_parallel
        self._urls: dict[str, str] = {}
        self._lock = Lock()

    def read(self, queues: Sequence[QueueConfig]) -> list[QueueObservation]:
        if not queues:
            return []
        workers = min(self._max_parallel, len(queues))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sqs-read") as pool:
            return list(pool.map(self._read_one, queues))

    def _read_one(self, queue: QueueConfig) -> QueueObservation:
        try:
            url = self._url(queue)
            response = self._client.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=list(_ATTRIBUTES),  # type: ignore[arg-type]
            )
        except AwsCallError as error:
            return QueueObservation(name=queue.name, error=error.code)
        except (ClientError, BotoCoreError) as error:
            return QueueObservation(name=queue.name, error=translate("GetQueueAttributes", error).code)
        attributes = {str(name): value for name, value in response.get("Attributes", {}).items()}
        missing = [name for name in _ATTRIBUTES if name not in attributes]
        if missing:
            # An attribute SQS left out is unknown, not zero: a zero would scale a busy fleet in.
            return QueueObservation(name=queue.name, error=f"MissingAttribute:{missing[0]}")
        try:
            counts = [int(attributes[name]) for name in _ATTRIBUTES]
        except ValueError:
            return QueueObservation(name=queue.name, error="MalformedAttribute")
        return QueueObservation(name=queue.name, visible=counts[0], in_flight=counts[1], delayed=counts[2])

    def _url(self, queue: QueueConfig) -> str:
        if queue.url:
            return queue.url
        with self._lock:
            cached = self._urls.get(queue.name)
        if cached:
            return cached
        try:
            url = self._client.get_queue_url(QueueName=queue.name)["QueueUrl"]
        except (ClientError, BotoCoreError) as error:
            raise translate("GetQueueUrl", error) from error
        with self._lock:
            self._urls[queue.name] = url
        return url


class SqsJobQueues:
    """Implements ports.JobQueues: sends job envelopes, by queue URL or by name (looked up once)."""

    def __init__(self, client: SQSClient | None = None) -> None:
        self._client = client or clients.sqs()
        self._urls: dict[str, str] = {}
        self._lock = Lock()

    def _url(self, queue: str) -> str:
        if queue.startswith(("https://", "http://")):
            return queue
        with self._lock:
            if queue not in self._urls:
                try:
                    self._urls[queue] = self._client.get_queue_url(QueueName=queue)["QueueUrl"]
                except (ClientError, BotoCoreError) as error:
                    # Only a lookup: whatever became of it, no message was sent.
                    raise translate("GetQueueUrl", error, reads_only=True) from error
            return self._urls[queue]

    def send(self, queue: str, body: str) -> str:
        url = self._url(queue)
        try:
            return self._client.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
        except (ClientError, BotoCoreError) as error:
            raise translate("SendMessage", error) from error

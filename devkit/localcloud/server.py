"""moto's server on 127.0.0.1, with the fixes concurrent clients need: atomic SQS receives and
atomic DynamoDB requests.

In server mode moto answers requests on many threads, and its ReceiveMessage walks a queue's
messages without a lock: two consumers polling at once can both take the same visible message (and
moto sometimes fails with `list.remove(x): x not in list`). Real SQS never hands one visible message
to two receivers. Here every receive pass, delete and visibility change on a queue runs under one
lock, while a long poll waits between passes without holding it, so consumers still block as on SQS.
Likewise DynamoDB (make_dynamodb_atomic, below): the refund's exactly-once rests on conditions that
must hold under concurrent deliveries, as they do on DynamoDB.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.server import ThreadedMotoServer
from moto.sqs import models as sqs_models

_LOCK = threading.RLock()
_POLL_SECONDS = 0.05
_installed = False
_dynamodb_installed = False


def make_sqs_receives_atomic() -> None:
    """Patch moto's SQS backend in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - the patch is process-wide by nature
    if _installed:
        return
    backend = sqs_models.SQSBackend
    receive = backend.receive_message

    def atomic_receive(
        self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any, **kwargs: Any
    ) -> Any:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _LOCK:
                result = receive(self, queue_name, count, 0, *args, **kwargs)
            if result or time.monotonic() >= deadline:
                return result
            time.sleep(_POLL_SECONDS)

    def locked(method: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _LOCK:
                return method(self, *args, **kwargs)

        return call

    backend.receive_message = atomic_receive  # type: ignore[method-assign]
    for name in (
        "delete_message",
        "delete_message_batch",
        "change_message_visibility",
        "change_message_visibility_batch",
        "send_message",
        "send_message_batch",
        "purge_queue",
    ):
        setattr(backend, name, locked(getattr(backend, name)))
    _installed = True


def make_dynamodb_atomic() -> None:
    """Give moto DynamoDB's per-request atomicity, and transactions that cost what they touch.

    moto checks a condition and then writes without a lock, and a transaction snapshots every table
    it touches whole (a deep copy) to roll back on cancellation: concurrent threads could both pass
    one condition, a cancelled transaction would erase what other threads wrote meanwhile, and each
    transaction costs time proportional to the table. Here each request holds one lock, and a
    transaction snapshots only the items it names, restoring exactly those when it is cancelled.
    The races between requests (a transaction, then a notice claim, then a publish) stay as real as
    the test's threads make them.
    """
    global _dynamodb_installed  # noqa: PLW0603 - the patch is process-wide by nature
    if _dynamodb_installed:
        return
    lock = threading.RLock()
    backend = dynamodb_models.DynamoDBBackend
    models = dynamodb_models

    def atomic(original: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(self, *args, **kwargs)

        return call

    for name in ("put_item", "update_item", "get_item", "delete_item", "scan", "query"):
        setattr(backend, name, atomic(getattr(backend, name)))

    original_transact = backend.transact_write_items

    class _NoTableCopies:
        """Stands in for the `copy` module inside moto's transaction: the snapshot is taken per item below."""

        @staticmethod
        def deepcopy(value: Any) -> Any:
            return value

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with lock:
            saved = []
            for entry in transact_items:
                op = next(iter(entry.values()))
                table = self.get_table(op["TableName"])
                key = op.get("Key") or {
                    k: op["Item"][k] for k in (table.hash_key_attr, table.range_key_attr) if k is not None
                }
                current = self.get_item(op["TableName"], key)
                saved.append(
                    (op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None)
                )
            setattr(models, "copy", _NoTableCopies)  # noqa: B010 - moto's module attribute, not exported
            try:
                original_transact(self, transact_items)
            except TransactionCanceledException:
                for table_name, key, attributes in saved:
                    if attributes is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, attributes)
                raise
            finally:
                setattr(models, "copy", copy)  # noqa: B010

    backend.transact_write_items = transact  # type: ignore[method-assign]
    _dynamodb_installed = True


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port with atomic SQS receives and DynamoDB requests; yields its URL."""
    make_sqs_receives_atomic()
    make_dynamodb_atomic()
    # One line per request would drown what matters; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()

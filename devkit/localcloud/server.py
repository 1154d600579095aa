"""moto's server on 127.0.0.1, with the one fix concurrent consumers need: atomic SQS receives.

In server mode moto answers requests on many threads, and its ReceiveMessage walks a queue's
messages without a lock: two consumers polling at once can both take the same visible message (and
moto sometimes fails with `list.remove(x): x not in list`). Real SQS never hands one visible message
to two receivers. Here every receive pass, delete and visibility change on a queue runs under one
lock, while a long poll waits between passes without holding it, so consumers still block as on SQS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.server import ThreadedMotoServer
from moto.sqs import models as sqs_models

_LOCK = threading.RLock()
_POLL_SECONDS = 0.05
_installed = False


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


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port with atomic SQS receives; yields its endpoint URL."""
    make_sqs_receives_atomic()
    # One line per request would drown what matters; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()

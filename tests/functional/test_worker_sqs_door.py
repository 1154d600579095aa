"""The worker's SQS door (queue_worker/sqs.py) against moto: what a receive reads from each message,
and how deletes and visibility changes are batched per queue and report what SQS refused."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from queue_worker.settings import WorkerSettings
from queue_worker.sqs import Queues, ReceivedMessage, make_client, queue_name

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def sqs() -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def queue(sqs: Any, name: str) -> str:
    return str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"])


def fill(sqs: Any, url: str, count: int) -> None:
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": f"body-{start + i}"} for i in range(min(10, count - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def receive_all(queues: Queues, index: int, count: int) -> list[ReceivedMessage]:
    got: list[ReceivedMessage] = []
    while len(got) < count:
        batch = queues.receive(index, 10, 0, 30)
        assert batch, f"only {len(got)} of {count} received"
        got += batch
    return got


class Recording:
    """Wraps the client to keep each batch call's queue and entry count."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, str, int]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            if "Entries" in kwargs:
                self.calls.append((name, queue_name(kwargs["QueueUrl"]), len(kwargs["Entries"])))
            return method(**kwargs)

        return call


def test_given_a_message_when_received_then_its_ids_body_receive_count_and_sent_time_are_read(sqs: Any) -> None:
    url = queue(sqs, "read")
    before = time.time()
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    queues = Queues(sqs, [url])
    [first] = queues.receive(0, 10, 0, 0)  # visible again at once: received twice
    [second] = queues.receive(0, 10, 0, 30)
    assert (first.queue_index, first.queue_url, first.body) == (0, url, "hello")
    assert (first.receive_count, second.receive_count) == (1, 2)
    assert first.message_id == second.message_id and first.receipt_handle != second.receipt_handle
    assert first.sent_at is not None and before - 1 <= first.sent_at <= time.time() + 1
    assert queues.receive(0, 10, 0, 30) == [], "hidden for the visibility asked for"


def test_given_a_receive_then_it_asks_for_the_count_wait_visibility_and_attributes_it_was_given(sqs: Any) -> None:
    seen: list[dict[str, Any]] = []
    sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", lambda params, **_: seen.append(params))
    url = queue(sqs, "asks")
    Queues(sqs, ["unused", url]).receive(1, 7, 0, 45)
    [params] = seen
    assert params["QueueUrl"] == url
    assert (params["MaxNumberOfMessages"], params["WaitTimeSeconds"], params["VisibilityTimeout"]) == (7, 0, 45)
    assert set(params["MessageSystemAttributeNames"]) == {"SentTimestamp", "ApproximateReceiveCount"}


def test_given_messages_of_two_queues_when_deleted_then_one_call_per_queue_and_10_entries_at_most(sqs: Any) -> None:
    high, low = queue(sqs, "del-high"), queue(sqs, "del-low")
    fill(sqs, high, 12)
    fill(sqs, low, 3)
    recording = Recording(sqs)
    queues = Queues(recording, [high, low])  # type: ignore[arg-type]
    messages = receive_all(queues, 0, 12) + receive_all(queues, 1, 3)
    assert queues.delete(messages) == {}
    assert recording.calls == [
        ("delete_message_batch", "del-high", 10),
        ("delete_message_batch", "del-high", 2),
        ("delete_message_batch", "del-low", 3),
    ]
    for url in (high, low):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
            "0",
            "0",
        )


def test_given_a_receipt_sqs_refuses_when_deleted_then_only_that_one_is_reported_with_its_code(sqs: Any) -> None:
    url = queue(sqs, "refused")
    fill(sqs, url, 2)
    queues = Queues(sqs, [url])
    good, other = receive_all(queues, 0, 2)
    bad = ReceivedMessage(0, url, "m-x", "not-a-receipt-handle", "x", 1, None)
    failed = queues.delete([good, bad, other])
    assert list(failed) == ["not-a-receipt-handle"]
    assert failed["not-a-receipt-handle"] == "ReceiptHandleIsInvalid"


def test_given_a_queue_that_does_not_exist_when_deleting_then_its_messages_fail_and_the_other_queue_is_served(
    sqs: Any,
) -> None:
    url = queue(sqs, "exists")
    fill(sqs, url, 1)
    queues = Queues(sqs, [url])
    [real] = receive_all(queues, 0, 1)
    gone = ReceivedMessage(1, url.replace("exists", "gone"), "m-g", "r-g", "x", 1, None)
    failed = queues.delete([gone, real])
    assert list(failed) == ["r-g"] and "NonExistentQueue" in failed["r-g"]
    assert queues.receive(0, 10, 0, 0) == [], "the real one was deleted"


def test_given_held_messages_when_their_visibility_is_set_then_batched_per_queue_and_refusals_reported(
    sqs: Any,
) -> None:
    url = queue(sqs, "vis")
    fill(sqs, url, 11)
    recording = Recording(sqs)
    queues = Queues(recording, [url])  # type: ignore[arg-type]
    messages = receive_all(queues, 0, 11)
    bad = ReceivedMessage(0, url, "m-x", "not-a-receipt-handle", "x", 1, None)
    failed = queues.set_visibility([*messages, bad], 0)
    assert [(m.message_id, why) for m, why in failed] == [("m-x", "ReceiptHandleIsInvalid")]
    assert [c[2] for c in recording.calls] == [10, 2]
    assert len(receive_all(queues, 0, 11)) == 11, "visible again at once"


def test_given_refusals_on_two_queues_when_setting_visibility_then_both_are_reported(sqs: Any) -> None:
    first, second = queue(sqs, "vis-a"), queue(sqs, "vis-b")
    queues = Queues(sqs, [first, second])
    bad = [ReceivedMessage(i, url, f"m-{i}", f"bad-{i}", "x", 1, None) for i, url in enumerate([first, second])]
    assert [(m.message_id, why) for m, why in queues.set_visibility(bad, 0)] == [
        ("m-0", "ReceiptHandleIsInvalid"),
        ("m-1", "ReceiptHandleIsInvalid"),
    ]
    assert set(queues.delete(bad)) == {"bad-0", "bad-1"}


def test_given_a_queue_that_does_not_exist_when_setting_visibility_then_each_of_its_messages_fails() -> None:
    queues = Queues(boto3.client("sqs", region_name="us-east-1"), ["x"])
    gone = [ReceivedMessage(0, "https://sqs.us-east-1.amazonaws.com/123456789012/gone", "m-0", "r-0", "", 1, None)]
    [(message, why)] = queues.set_visibility(gone, 5)
    assert message.message_id == "m-0" and "NonExistentQueue" in why


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://sqs.us-east-1.amazonaws.com/123456789012/jobs-pro", "jobs-pro"),
        ("http://127.0.0.1:5000/123456789012/jobs-free/", "jobs-free"),
        ("jobs", "jobs"),
    ],
)
def test_given_a_queue_url_then_its_name_is_the_last_segment(url: str, name: str) -> None:
    assert queue_name(url) == name


def test_given_settings_then_the_client_is_bounded_in_time_retries_and_connections() -> None:
    settings = WorkerSettings(queue_urls="http://x/1/q", job_handler="m:f", worker_slots=6, poll_wait_seconds=20)
    config = make_client(settings).meta.config
    assert (config.connect_timeout, config.read_timeout) == (5, 30)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}  # botocore's spelling of 3 retries
    assert config.max_pool_connections == 10

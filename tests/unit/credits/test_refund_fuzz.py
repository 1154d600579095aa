"""Fuzzing the DLQ record handler's bodies: nothing escapes it but the declared retryable errors.

The handler is DlqRefundFunction's own `record_handler`, over in-memory ports that may also fail the
way AWS does. Whatever the body, a record ends refunded, recorded, duplicate or parked (with its body),
or raises one of RETRYABLE_ERRORS so that it is delivered again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queue_scaler.credits.domain.refund import DeadLetterPolicy, RefundPolicy, reservation
from queue_scaler.credits.services.refunds import RETRYABLE_ERRORS, RefundService
from queue_scaler.shared.errors import AwsCallError, Forbidden, Throttled, Unavailable
from tests.fakes import FakeJobQueues, FakeLedger, FakeNotifier, FakeParking, RecordingMetrics
from tests.functional.handlers import load_handler

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
VALID: dict[str, Any] = {
    "job_id": "j-1",
    "user_id": "u-1",
    "plan": "pro",
    "kind": "video.transcode",
    "credits": 12,
    "submitted_at": "2026-11-22T09:00:00Z",
    "payload": {},
}
VALID_RESERVATION: dict[str, Any] = {
    "job_id": "j-1",
    "pool": "video",
    "user_id": "u-1",
    "plan": "pro",
    "kind": "video.transcode",
    "credits": 12,
    "policy": RefundPolicy(cap=100),
    "now": NOW,
}
# Near-valid envelopes: each field may be replaced by any JSON value, removed, or left alone, and
# credits drawn from the edges that matter (0, the cap, beyond it, negative, huge).
near_valid = st.fixed_dictionaries(
    {
        key: st.one_of(st.just(value), json_values, st.just("<absent>"))
        for key, value in VALID.items()
        if key != "credits"
    }
    | {"credits": st.one_of(st.sampled_from([0, 1, 12, 100, 101, -1, 2**63]), json_values)}
).map(lambda d: json.dumps({k: v for k, v in d.items() if v != "<absent>"}))
bodies = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    near_valid,
    st.sampled_from(["", "null", "[]", "{}", '{"job_id": "j-1"', "\x00", json.dumps(VALID)]),
)
failures = st.sampled_from([None, Throttled, Unavailable, Forbidden])
#: Which ports fail (ledger, parking, notifier), each with a fresh error of the drawn kind on every call.
port_failures = st.tuples(failures, failures, failures)


class Flaky:
    """Wraps a fake port so that every call may fail the way the AWS adapter would."""

    def __init__(self, inner: Any, failure: type[AwsCallError] | None) -> None:
        self._inner, self._failure = inner, failure

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._failure is not None:
                raise self._failure(name, self._failure.__name__)
            return method(*args, **kwargs)

        return call


@pytest.fixture(scope="module")
def handler() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        env.setenv("POWERTOOLS_SERVICE_NAME", "dlq-refund")
        yield load_handler("dlq_refund")


def record(body: str) -> SQSRecord:
    return SQSRecord(
        {
            "messageId": "m-1",
            "receiptHandle": "r",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "5", "DeadLetterQueueSourceArn": "arn:aws:sqs:us-east-1:1:q"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:1:q-dlq",
            "awsRegion": "us-east-1",
        }
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=bodies,
    reserved=st.booleans(),
    fails=port_failures,
)
def test_whatever_the_body_only_retryable_errors_escape_the_record_handler(
    handler: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    reserved: bool,
    fails: tuple[type[AwsCallError] | None, ...],
) -> None:
    ledger, parking, notifier = FakeLedger(), FakeParking(), FakeNotifier()
    ledger.deposit("u-1", 1000, "p", NOW)
    if reserved:
        ledger.reserve(reservation(**VALID_RESERVATION))
    ledger_fails, parking_fails, notifier_fails = fails
    service = RefundService(
        Flaky(ledger, ledger_fails),
        Flaky(parking, parking_fails),
        Flaky(notifier, notifier_fails),
        RecordingMetrics(),
        queues=FakeJobQueues(),
        policy=RefundPolicy(cap=100),
        dead_letters=DeadLetterPolicy(),
        lease_seconds=60,
    )
    monkeypatch.setattr(handler, "_service", lambda: service)
    try:
        outcome = handler.record_handler(record(body))
    except RETRYABLE_ERRORS:
        return
    assert outcome["result"] in {"refunded", "recorded", "duplicate", "parked"}
    if outcome["result"] == "parked":
        assert parking.parked["m-1"].body == body and outcome["reason"]
    for account in ledger.summary().accounts:
        assert account.problems() == []

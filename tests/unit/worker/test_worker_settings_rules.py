"""The worker settings' derived values and cross-field rules, at their boundaries."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.shared.jobs import JobEnvelope
from queue_worker import examples
from queue_worker.settings import WorkerSettings
from queue_worker.worker import describe_validation_error

BASE: dict[str, Any] = {"queue_urls": "http://sqs.local/1/q", "job_handler": "m:f"}


def settings(**changes: Any) -> WorkerSettings:
    return WorkerSettings(**BASE | changes)


@pytest.mark.parametrize(
    ("case", "drain", "poll", "expected"),
    [
        ("drain longer than the poll: kept", 21, 20, 20),
        ("drain equal to the poll: one second under it", 20, 20, 19),
        ("fractional drain above the poll: kept", 20.5, 20, 20),
        ("fractional drain under the poll: its whole seconds minus one", 5.9, 20, 4),
        ("drain under a second: short polls only", 0.5, 20, 0),
        ("no long poll asked: nothing to shorten", 5, 0, 0),
    ],
)
def test_given_a_drain_window_then_a_long_poll_always_returns_within_it(
    case: str, drain: float, poll: int, expected: int
) -> None:
    assert settings(drain_seconds=drain, poll_wait_seconds=poll).poll_wait_seconds == expected, case


@pytest.mark.parametrize(("poll", "read_timeout"), [(0, 10), (1, 11), (20, 30)])
def test_given_a_long_poll_then_the_http_read_waits_ten_seconds_longer(poll: int, read_timeout: float) -> None:
    assert settings(poll_wait_seconds=poll, drain_seconds=60).read_timeout == read_timeout


def test_given_no_heartbeat_period_then_a_third_of_the_visibility_timeout_else_the_one_given() -> None:
    assert settings(visibility_timeout=90).heartbeat_period == 30
    assert settings(visibility_timeout=90, heartbeat_seconds=7.5).heartbeat_period == 7.5


def test_given_scale_in_protection_without_a_group_then_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match="SCALE_IN_PROTECTION needs AUTOSCALING_GROUP_NAME"):
        settings(scale_in_protection=True)
    assert settings(scale_in_protection=True, autoscaling_group_name="g").autoscaling_group_name == "g"
    assert settings(scale_in_protection=False).autoscaling_group_name is None


@pytest.mark.parametrize(
    ("case", "value", "urls"),
    [
        ("spaces and empty items dropped", " http://a/1/x ,, http://a/1/y ", ["http://a/1/x", "http://a/1/y"]),
        ("a list as is", ["http://a/1/x"], ["http://a/1/x"]),
    ],
)
def test_given_queue_urls_then_their_order_is_kept(case: str, value: Any, urls: list[str]) -> None:
    assert settings(queue_urls=value).queue_urls == urls, case


@pytest.mark.parametrize(
    ("case", "changes", "field"),
    [
        ("instance id too short", {"instance_id": "i-0123456"}, "instance_id"),
        ("instance id too long", {"instance_id": "i-0123456789abcdef01"}, "instance_id"),
        ("instance id not hex", {"instance_id": "i-0123456z"}, "instance_id"),
        ("pool name with a space", {"pool_name": "my pool"}, "pool_name"),
        ("pool name over 80", {"pool_name": "p" * 81}, "pool_name"),
        ("prefetch over one batch", {"worker_prefetch": 11}, "worker_prefetch"),
        ("visibility under 2 s", {"visibility_timeout": 1}, "visibility_timeout"),
        ("more than 256 slots", {"worker_slots": 257}, "worker_slots"),
        ("drain over an hour", {"drain_seconds": 3601}, "drain_seconds"),
        ("empty group name", {"autoscaling_group_name": ""}, "autoscaling_group_name"),
        ("handler module starting with a digit", {"job_handler": "1m:f"}, "job_handler"),
    ],
)
def test_given_a_value_past_its_limit_then_the_error_names_the_variable(
    case: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        settings(**changes)
    assert [error["loc"][0] for error in raised.value.errors()] == [field], case


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("shortest instance id", {"instance_id": "i-01234567"}),
        ("longest instance id", {"instance_id": "i-0123456789abcdef0"}),
        ("pool name of 80", {"pool_name": "p" * 80}),
        ("prefetch of one batch", {"worker_prefetch": 10}),
        ("visibility of 2 s", {"visibility_timeout": 2}),
        ("256 slots", {"worker_slots": 256}),
        ("an hour's drain", {"drain_seconds": 3600}),
        ("dotted handler module", {"job_handler": "a.b_c:run_1"}),
    ],
)
def test_given_a_value_at_its_limit_then_it_is_accepted(case: str, changes: dict[str, Any]) -> None:
    loaded = settings(**changes)
    for name, value in changes.items():
        assert getattr(loaded, name) == value, case


def test_given_nothing_optional_then_the_documented_defaults() -> None:
    loaded = settings()
    assert (loaded.worker_slots, loaded.worker_prefetch, loaded.visibility_timeout) == (1, 0, 120)
    assert (loaded.drain_seconds, loaded.poll_wait_seconds, loaded.retry_delay_seconds) == (60, 20, 10)
    assert (loaded.starvation_limit, loaded.pool_name, loaded.metrics_namespace) == (5, "default", "QueueScaler")
    assert (loaded.scale_in_protection, loaded.protection_linger_seconds, loaded.ledger_table) == (False, 5, None)
    assert (loaded.metrics_flush_seconds, loaded.health_max_age_seconds) == (60, 60)


def test_given_a_body_that_is_not_an_object_then_the_reason_names_the_body() -> None:
    with pytest.raises(ValidationError) as raised:
        JobEnvelope.from_body('"just text"')
    assert describe_validation_error(raised.value).startswith("body: ")


def test_given_a_sleep_job_then_it_sleeps_its_payload_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(examples.time, "sleep", slept.append)
    envelope = {"job_id": "j", "user_id": "u", "plan": "free", "kind": "k", "credits": 0}
    job = JobEnvelope.model_validate(envelope | {"submitted_at": "2026-01-01T00:00:00Z", "payload": {"seconds": "2.5"}})
    examples.sleep_job(job)
    examples.sleep_job(job.model_copy(update={"payload": {}}))
    assert slept == [2.5, 0.0]

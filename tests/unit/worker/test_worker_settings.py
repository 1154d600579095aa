"""Worker settings from the environment, the handler loader and the health file rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from queue_scaler.shared.jobs import JobEnvelope
from queue_worker.examples import DemoJobError, sleep_job
from queue_worker.health import HealthFile, is_healthy
from queue_worker.settings import WorkerSettings
from queue_worker.worker import describe_validation_error, load_handler, peek_job_id

URLS = "http://sqs.local/1/high, http://sqs.local/1/low"


def test_given_the_contract_variables_when_read_then_urls_keep_their_priority_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUEUE_URLS", URLS)
    monkeypatch.setenv("JOB_HANDLER", "queue_worker.examples:sleep_job")
    monkeypatch.setenv("DRAIN_SECONDS", "90")
    settings = WorkerSettings()
    assert settings.queue_urls == ["http://sqs.local/1/high", "http://sqs.local/1/low"]
    assert settings.drain_seconds == 90
    assert settings.poll_wait_seconds == 20
    assert settings.heartbeat_period == settings.visibility_timeout / 3
    assert settings.read_timeout > 20, "a long poll must not time out the HTTP read"


def test_given_a_drain_window_shorter_than_the_long_poll_then_the_poll_is_shortened() -> None:
    settings = WorkerSettings(queue_urls=URLS, job_handler="m:f", drain_seconds=5)
    assert settings.poll_wait_seconds == 4


@pytest.mark.parametrize(
    ("case", "changes", "variable"),
    [
        ("no queue", {"queue_urls": " , "}, "queue_urls"),
        ("handler without function", {"job_handler": "queue_worker.examples"}, "job_handler"),
        ("zero slots", {"worker_slots": 0}, "worker_slots"),
        ("long poll above SQS's 20 s", {"poll_wait_seconds": 21}, "poll_wait_seconds"),
    ],
)
def test_given_a_bad_variable_when_read_then_the_error_names_it(
    case: str, changes: dict[str, object], variable: str
) -> None:
    values: dict[str, object] = {"queue_urls": URLS, "job_handler": "m:f", **changes}
    with pytest.raises(ValidationError) as raised:
        WorkerSettings(**values)
    assert variable in str(raised.value), case


def test_given_the_example_handler_spec_when_loaded_then_it_is_sleep_job() -> None:
    assert load_handler("queue_worker.examples:sleep_job") is sleep_job
    with pytest.raises(TypeError, match="not callable"):
        load_handler("queue_worker.settings:MAX_BATCH")
    with pytest.raises(AttributeError):
        load_handler("queue_worker.examples:missing")


def test_given_payload_fail_when_sleep_job_runs_then_it_raises() -> None:
    job = JobEnvelope.model_validate(
        {
            "job_id": "j",
            "user_id": "u",
            "plan": "free",
            "kind": "k",
            "credits": 0,
            "submitted_at": "2026-01-01T00:00:00Z",
            "payload": {"fail": True},
        }
    )
    with pytest.raises(DemoJobError, match="on purpose"):
        sleep_job(job)
    sleep_job(job.model_copy(update={"payload": {"seconds": 0}}))


def test_given_bodies_when_peeked_then_job_id_only_when_readable() -> None:
    assert peek_job_id('{"job_id": "j-1"}') == "j-1"
    assert peek_job_id("not json") is None
    assert peek_job_id("[1]") is None
    assert peek_job_id('{"job_id": 7}') is None


def test_given_an_invalid_envelope_then_the_reason_names_each_field() -> None:
    with pytest.raises(ValidationError) as raised:
        JobEnvelope.from_body('{"job_id": "j"}')
    reason = describe_validation_error(raised.value)
    assert "user_id: Field required" in reason
    assert "credits: Field required" in reason


def test_given_a_health_file_then_fresh_is_healthy_and_stale_or_missing_is_not(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "health"
    health = HealthFile(path)
    assert not is_healthy(path, 60, now=0)
    health.mark_healthy()
    modified = path.stat().st_mtime
    assert is_healthy(path, 60, now=modified + 60)
    assert not is_healthy(path, 60, now=modified + 61)
    health.clear()
    assert not is_healthy(path, 60, now=modified)

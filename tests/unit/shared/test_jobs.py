"""The job envelope (CONTRACTS.md section 4): what producers, workers and the refund function share."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from queue_scaler.shared.jobs import PLANS, JobEnvelope, JobId

CONTRACT_EXAMPLE = {
    "job_id": "j-123",
    "user_id": "u-9",
    "plan": "pro",
    "kind": "video.transcode",
    "credits": 12,
    "submitted_at": "2026-11-22T10:00:00Z",
    "payload": {"seconds": 2},
}


def body(**changes: Any) -> str:
    fields = {**CONTRACT_EXAMPLE, **changes}
    return json.dumps({k: v for k, v in fields.items() if v is not ...})


def test_given_the_contract_example_when_parsed_then_every_field_is_typed() -> None:
    job = JobEnvelope.from_body(body())
    assert job.job_id == "j-123"
    assert job.plan == "pro"
    assert job.credits == 12
    assert job.submitted_at == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert job.payload == {"seconds": 2}


def test_given_an_envelope_when_written_and_read_back_then_it_is_unchanged() -> None:
    job = JobEnvelope.from_body(body())
    assert JobEnvelope.from_body(job.to_body()) == job
    assert json.loads(job.to_body())["submitted_at"] == "2026-11-22T10:00:00Z"


def test_given_the_plans_then_they_are_ordered_from_highest_priority() -> None:
    assert PLANS == ("enterprise", "studio", "pro", "starter", "free")


@pytest.mark.parametrize(
    ("case", "changes", "field"),
    [
        ("missing job_id", {"job_id": ...}, "job_id"),
        ("job_id with a space", {"job_id": "j 1"}, "job_id"),
        ("empty user_id", {"user_id": ""}, "user_id"),
        ("plan that no queue name could carry", {"plan": "gold plan"}, "plan"),
        ("empty plan", {"plan": ""}, "plan"),
        ("negative credits", {"credits": -1}, "credits"),
        ("credits as a string", {"credits": "12"}, "credits"),
        ("fractional credits", {"credits": 1.5}, "credits"),
        ("naive submitted_at", {"submitted_at": "2026-11-22T10:00:00"}, "submitted_at"),
        ("payload not an object", {"payload": [1, 2]}, "payload"),
        ("empty kind", {"kind": ""}, "kind"),
    ],
)
def test_given_an_invalid_field_when_parsed_then_the_error_names_it(
    case: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        JobEnvelope.from_body(body(**changes))
    assert [e["loc"][0] for e in raised.value.errors()] == [field], case


def test_given_a_body_that_is_not_json_when_parsed_then_validation_fails() -> None:
    with pytest.raises(ValidationError):
        JobEnvelope.from_body("not json")


def test_given_an_unknown_field_when_parsed_then_it_is_ignored_for_rolling_deploys() -> None:
    job = JobEnvelope.from_body(body(trace_id="abc"))
    assert "trace_id" not in job.model_dump()


def test_given_no_payload_when_parsed_then_it_is_empty() -> None:
    assert JobEnvelope.from_body(body(payload=...)).payload == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty: give 1 to 128 characters"),
        ("a" * 129, "has 129 characters, above the limit of 128: shorten it"),
        ("u 1", "has ' ' at position 1: use printable ASCII without spaces (! to ~)"),
    ],
)
def test_given_a_bad_identifier_then_its_refusal_says_what_is_wrong_and_what_to_do(value: str, message: str) -> None:
    """The CLI prints the message after the field's name; callers match on the error's type."""
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(JobId).validate_python(value)
    assert [(e["type"], e["msg"]) for e in raised.value.errors()] == [("identifier", message)]

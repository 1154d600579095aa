"""Bounds on ids and credits (issue 23, case 6): each rule just inside and just outside its limit.

One identifier rule (queue_scaler.shared.jobs.check_identifier) for job ids, user ids and deposit
references wherever they enter: the job envelope (workers, DlqRefundFunction), a deposit, the CLI.
Credits: a deposit within 1..DEPOSIT_CAP, a job within 0..its plan's cap, caps within MAX_CREDIT_CAP.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from queue_scaler.credits.adapters.ledger import job_pk
from queue_scaler.credits.domain.ledger import Deposit
from queue_scaler.credits.domain.refund import (
    DEFAULT_BALANCE_CAP,
    DEFAULT_DEPOSIT_CAP,
    MAX_CREDIT_CAP,
    CreditLimits,
    InvalidAmount,
    RefundPolicy,
    check_job_credits,
    job_credit_cap,
)
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.settings import ProducerSettings
from queue_scaler.shared.jobs import ID_MAX_LENGTH, JobEnvelope, JobId, Reference, UserId

IDENTIFIERS = [
    # (name, value, refusal's words or None when accepted)
    ("one character", "a", None),
    ("exactly the length limit", "a" * ID_MAX_LENGTH, None),
    ("one above the length limit", "a" * (ID_MAX_LENGTH + 1), f"129 characters, above the limit of {ID_MAX_LENGTH}"),
    ("empty", "", "is empty"),
    ("the lowest printable character", "!", None),
    ("the highest printable character", "~", None),
    ("punctuation a key separator could be", "u#1/x:y@z", None),
    ("a space", "u 1", "' ' at position 1"),
    ("a bell (control character)", "u\x071", r"'\x07' at position 1"),
    ("an escape sequence", "\x1b[31mu", r"'\x1b' at position 0"),
    ("a NUL", "u\x00", r"'\x00' at position 1"),
    ("a trailing newline", "u-1\n", r"'\n' at position 3"),
    ("DEL, just above ~", "u\x7f", r"'\x7f' at position 1"),
    ("a non-ASCII look-alike", "u-\u0430", r"'\u0430' at position 2"),
]


@pytest.mark.parametrize("kind", [JobId, UserId, Reference], ids=["job_id", "user_id", "reference"])
@pytest.mark.parametrize(("name", "value", "refusal"), IDENTIFIERS, ids=[c[0] for c in IDENTIFIERS])
def test_identifier_rule(kind: Any, name: str, value: str, refusal: str | None) -> None:
    adapter = TypeAdapter(kind)
    if refusal is None:
        assert adapter.validate_python(value) == value, name
        return
    with pytest.raises(ValidationError) as raised:
        adapter.validate_python(value)
    assert refusal in raised.value.errors()[0]["msg"], name


ENVELOPE = {
    "job_id": "j-1",
    "user_id": "u-1",
    "plan": "pro",
    "kind": "video.transcode",
    "credits": 1,
    "submitted_at": "2026-12-07T10:00:00Z",
}


@pytest.mark.parametrize("field", ["job_id", "user_id"])
@pytest.mark.parametrize(("name", "value", "refusal"), IDENTIFIERS, ids=[c[0] for c in IDENTIFIERS])
def test_the_envelope_refuses_the_same_ids_naming_the_field(
    field: str, name: str, value: str, refusal: str | None
) -> None:
    """What workers and DlqRefundFunction parse (JobEnvelope.from_body) follows the same rule."""
    body = json.dumps(ENVELOPE | {field: value})
    if refusal is None:
        assert getattr(JobEnvelope.from_body(body), field) == value, name
        return
    with pytest.raises(ValidationError) as raised:
        JobEnvelope.from_body(body)
    assert [(e["loc"], refusal in e["msg"]) for e in raised.value.errors()] == [((field,), True)], name


@pytest.mark.parametrize(("field", "value"), [("user_id", "u\x07"), ("reference", "p 1"), ("credits", "5")])
def test_a_deposit_names_its_bad_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Deposit.model_validate({"user_id": "u-1", "credits": 5, "reference": "p-1"} | {field: value})
    assert [e["loc"] for e in raised.value.errors()] == [(field,)]


LIMITS = CreditLimits(deposit_cap=100, balance_cap=1000)


@pytest.mark.parametrize(
    ("credits", "refusal"),
    [
        (1, None),
        (100, None),
        (101, "credits: 101 is above the deposit cap of 100: check the amount, or raise DEPOSIT_CAP"),
        (0, "credits: a deposit must be positive, got 0"),
        (-1, "credits: a deposit must be positive, got -1"),
        (10**40, f"credits: {10**40} is above the deposit cap of 100"),
    ],
)
def test_deposit_cap(credits: int, refusal: str | None) -> None:
    if refusal is None:
        LIMITS.check_deposit(credits)
        return
    with pytest.raises(InvalidAmount) as raised:
        LIMITS.check_deposit(credits)
    assert str(raised.value).startswith(refusal)


@pytest.mark.parametrize(
    ("plan", "credits", "refusal"),
    [
        ("free", 0, None),
        ("free", 50, None),
        ("free", 51, "credits: 51 is above plan free's cap of 50 per job: give at most 50"),
        ("free", 10**30, f"credits: {10**30} is above plan free's cap of 50"),
        ("pro", -1, "credits: -1 is negative"),
    ],
)
def test_job_credits_within_the_plans_cap(plan: str, credits: int, refusal: str | None) -> None:
    if refusal is None:
        check_job_credits(plan, credits, 50)
        return
    with pytest.raises(InvalidAmount) as raised:
        check_job_credits(plan, credits, 50)
    assert str(raised.value).startswith(refusal)


@pytest.mark.parametrize(
    ("name", "plan_max", "cap"),
    [
        ("given no plan setting then the refund cap", None, 100),
        ("given a plan cap below the refund cap then the plan's", 99, 99),
        ("given a plan cap at the refund cap then it", 100, 100),
        ("given a plan cap above the refund cap then the refund cap: such a job could not be refunded", 101, 100),
    ],
)
def test_job_credit_cap(name: str, plan_max: int | None, cap: int) -> None:
    assert job_credit_cap(RefundPolicy(cap=100), plan_max) == cap, name


def test_the_pool_configuration_sets_caps_per_plan() -> None:
    pools = [{"name": "video", "max_size": 1, "queues": [{"name": "video-pro", "target_per_instance": 1}]}]
    config = ScalerConfig.model_validate({"pools": pools, "plans": {"free": {"max_credits": 10}}})
    assert (config.max_credits("free"), config.max_credits("pro")) == (10, None)
    assert ScalerConfig.model_validate({"pools": pools}).plans == {}
    with pytest.raises(ValidationError, match=r"plans\.free\.max_credits"):
        ScalerConfig.model_validate({"pools": pools, "plans": {"free": {"max_credits": 0}}})
    with pytest.raises(ValidationError, match=r"plans\.gold plan"):
        ScalerConfig.model_validate({"pools": pools, "plans": {"gold plan": {"max_credits": 1}}})


@pytest.mark.parametrize(
    ("deposit_cap", "balance_cap", "refusal"),
    [
        (1, 1, None),
        (MAX_CREDIT_CAP, MAX_CREDIT_CAP, None),
        (MAX_CREDIT_CAP, MAX_CREDIT_CAP + 1, "balance_cap"),
        (0, 1, "deposit_cap"),
        (2, 1, "deposit_cap (2) is above balance_cap (1)"),
    ],
)
def test_credit_limits(deposit_cap: int, balance_cap: int, refusal: str | None) -> None:
    if refusal is None:
        assert CreditLimits(deposit_cap=deposit_cap, balance_cap=balance_cap).balance_cap == balance_cap
        return
    with pytest.raises(ValidationError, match=re.escape(refusal)):
        CreditLimits(deposit_cap=deposit_cap, balance_cap=balance_cap)


def test_the_default_caps_fit_dynamodb_and_exact_doubles() -> None:
    limits = CreditLimits()
    assert (limits.deposit_cap, limits.balance_cap) == (DEFAULT_DEPOSIT_CAP, DEFAULT_BALANCE_CAP) == (10**9, 10**12)
    assert MAX_CREDIT_CAP < 2**53  # every balance an exact double (JSON readers, CloudWatch)
    assert len(str(MAX_CREDIT_CAP)) < 38  # DynamoDB numbers: 38 significant digits


def test_producer_settings_read_the_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOSIT_CAP", "500")
    monkeypatch.setenv("BALANCE_CAP", "5000")
    assert ProducerSettings().limits() == CreditLimits(deposit_cap=500, balance_cap=5000)
    monkeypatch.setenv("DEPOSIT_CAP", "5001")
    with pytest.raises(ValidationError, match=r"DEPOSIT_CAP \(5001\) is above BALANCE_CAP \(5000\)"):
        ProducerSettings()
    monkeypatch.setenv("BALANCE_CAP", str(MAX_CREDIT_CAP + 1))
    with pytest.raises(ValidationError, match="balance_cap"):
        ProducerSettings()


def test_the_longest_ids_make_ledger_keys_within_dynamodbs_limits() -> None:
    """CONTRACTS.md section 6: the longest key, `JOB#<pool>#<job>`, is 213 bytes (DynamoDB: a partition
    key up to 2,048 bytes, a sort key up to 1,024); `TX#deposit#<reference>` is 139."""
    longest_job = job_pk("p" * 80, TypeAdapter(JobId).validate_python("j" * ID_MAX_LENGTH))
    assert len(longest_job.encode()) == 213  # of 2,048
    assert len(f"TX#deposit#{'r' * ID_MAX_LENGTH}".encode()) == 139  # of 1,024
    assert RefundPolicy().cap == 10_000  # the default plan cap the docs quote

"""What a parked dead letter reports: nothing refunded, nobody notified, and the job it names (if any).

The DLQ handler returns these outcomes and logs them; an operator reading "parked" must be able to
trust that no credit moved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.unit.credits.test_refund_service import NOW, World, envelope, letter, reserve


@dataclass
class Case:
    name: str
    reserved: dict[str, Any] | None  # the reservation made before the dead letter, if any
    body: dict[str, Any] | str
    job_id: str | None


CASES = [
    Case("given a body that is not JSON when parked then it names no job", None, '{"job_id": "j-1"', None),
    Case("given no reservation when parked then it names the job", None, envelope(job_id="j-9"), "j-9"),
    Case(
        "given a reservation that disagrees when parked then it names the job",
        {"credits": 5},
        envelope(credits=12),
        "j-1",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_parked_outcome(case: Case) -> None:
    world = World()
    world.ledger.deposit("u-1", 100, "purchase-1", NOW)
    if case.reserved is not None:
        reserve(world, **case.reserved)
    balance_before = [a.balance for a in world.service.summary().accounts]
    outcome = world.service.handle(letter(case.body), NOW)
    assert outcome.as_dict() | {"reason": ""} == {
        "message_id": "m-1",
        "result": "parked",
        "job_id": case.job_id,
        "refunded": 0,
        "notified": False,
        "reason": "",
    }
    assert outcome.reason
    assert [a.balance for a in world.service.summary().accounts] == balance_before

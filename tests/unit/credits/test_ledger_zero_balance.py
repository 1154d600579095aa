"""An account whose credits are all spent has a balance of 0: a valid account, as the ledger stores it
(the balance item is read back through `Account`), not an error. Below 0 is refused, naming the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from queue_scaler.credits.domain.ledger import Account


@dataclass
class Case:
    name: str
    item: dict[str, Any]
    problems: list[str]


CASES = [
    Case(
        "given every credit reserved when read then a zero balance adds up",
        {"balance": 0, "deposited": 10, "reserved": 10, "refunded": 0},
        [],
    ),
    Case(
        "given every credit charged after a refund when read then a zero balance adds up",
        {"balance": 0, "deposited": 10, "reserved": 14, "refunded": 4},
        [],
    ),
    Case(
        "given a zero balance with credits unaccounted for when read then it is flagged",
        {"balance": 0, "deposited": 10, "reserved": 6, "refunded": 0},
        ["balance 0 != deposited 10 - charged 6"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_zero_balance(case: Case) -> None:
    account = Account.model_validate({"user_id": "u"} | case.item)
    assert account.balance == 0
    assert [p.removeprefix("u: ") for p in account.problems()] == case.problems


def test_given_a_negative_balance_when_read_then_it_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="balance"):
        Account.model_validate({"user_id": "u", "balance": -1, "deposited": 10, "reserved": 11})

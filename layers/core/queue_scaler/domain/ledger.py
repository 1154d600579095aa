"""The credit ledger's model: each user's account and the invariant every write keeps.

Every movement of credits is one DynamoDB transaction that updates the account's running totals and
writes the matching credit transaction, so the totals below are exact, not estimates:

    charged = reserved - refunded          (a reservation is the charge; a refund returns it)
    balance = deposited - charged          (credits the user may still reserve)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TransactionKind(StrEnum):
    """The kinds of credit transaction, one item each in the user's statement."""

    DEPOSIT = "deposit"
    RESERVE = "reserve"
    REFUND = "refund"


class JobStatus(StrEnum):
    RESERVED = "reserved"  # submitted; its credits are reserved (charged unless refunded)
    FAILED = "failed"  # dead-lettered; refunded if it had reserved anything


class Account(_Model):
    """One user's running totals, as stored on the user's balance item."""

    user_id: str
    balance: Annotated[int, Field(ge=0)] = 0
    deposited: Annotated[int, Field(ge=0)] = 0
    reserved: Annotated[int, Field(ge=0)] = 0
    refunded: Annotated[int, Field(ge=0)] = 0

    @property
    def charged(self) -> int:
        """Credits the user finally paid: reserved by jobs that did not fail for good."""
        return self.reserved - self.refunded

    def problems(self) -> list[str]:
        """Violations of the ledger's invariant; empty when the account adds up."""
        found = []
        if self.refunded > self.reserved:
            found.append(f"{self.user_id}: refunded {self.refunded} exceeds reserved {self.reserved}")
        if self.balance != self.deposited - self.charged:
            found.append(
                f"{self.user_id}: balance {self.balance} != deposited {self.deposited} - charged {self.charged}"
            )
        return found


class Summary(_Model):
    """The ledger's totals across users: what the demo summary and `local status` print."""

    accounts: list[Account]
    refunds: Annotated[int, Field(ge=0, description="Jobs refunded (credits returned)")]
    recorded: Annotated[int, Field(ge=0, description="Failed jobs that had reserved nothing")]

    @property
    def reserved(self) -> int:
        return sum(a.reserved for a in self.accounts)

    @property
    def refunded(self) -> int:
        return sum(a.refunded for a in self.accounts)

    @property
    def charged(self) -> int:
        return sum(a.charged for a in self.accounts)

    def problems(self) -> list[str]:
        return [p for a in self.accounts for p in a.problems()]

"""The job envelope: the JSON body of every job message (CONTRACTS.md section 4).

Producers write it, workers validate it before running a job, and the DLQ refund function reads it
to know whom to refund and how much. Keeping one model here, in the shared package, is what makes
those three agree.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

#: A plan's name, as a pool configuration's queues name it (their `plan`, or a name ending in
#: `-<plan>`): any plan a configuration routes is one a job can carry.
PLAN_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Plan = Annotated[str, Field(pattern=PLAN_PATTERN)]

#: The template's plans, from the highest priority to the lowest: the order of its pools' queues.
PLANS: tuple[str, ...] = ("enterprise", "studio", "pro", "starter", "free")

#: The longest identifier (job id, user id, deposit reference). Identifiers end up in DynamoDB keys:
#: the longest, `JOB#<pool>#<job>` with an 80-character pool, is 213 bytes, far inside DynamoDB's
#: 2,048-byte partition key and 1,024-byte sort key (`TX#deposit#<reference>`: 139 bytes).
ID_MAX_LENGTH = 128
#: They also end up in log lines, terminals (`jobs show`) and user notices: printable ASCII without
#: spaces (`!` to `~`: letters, digits, punctuation) keeps them unambiguous everywhere; no control
#: character, escape sequence, space or non-ASCII look-alike.
ID_PATTERN = rf"^[!-~]{{1,{ID_MAX_LENGTH}}}$"
_ID_CHARACTER = re.compile(r"[!-~]")


def check_identifier(value: str) -> str:
    """The one rule for job ids, user ids and deposit references; the error says what is wrong and where."""
    if not value:
        raise PydanticCustomError("identifier", "is empty: give 1 to {limit} characters", {"limit": ID_MAX_LENGTH})
    if len(value) > ID_MAX_LENGTH:
        raise PydanticCustomError(
            "identifier",
            "has {length} characters, above the limit of {limit}: shorten it",
            {"length": len(value), "limit": ID_MAX_LENGTH},
        )
    for position, character in enumerate(value):
        if not _ID_CHARACTER.fullmatch(character):
            raise PydanticCustomError(
                "identifier",
                "has {character} at position {position}: use printable ASCII without spaces (! to ~)",
                {"character": ascii(character), "position": position},
            )
    return value


def _identifier(description: str) -> Any:
    # pragma: no mutate block: called only while the module is imported, before mutmut picks a mutant
    return Field(
        description=f"{description}; 1 to {ID_MAX_LENGTH} printable ASCII characters, no spaces",
        json_schema_extra={"pattern": ID_PATTERN},
    )


#: The three identifiers, each validated by `check_identifier` wherever it enters: every CLI command,
#: `queue_scaler.producer`, the job envelope (so workers and DlqRefundFunction refuse the same ones).
JobId = Annotated[str, AfterValidator(check_identifier), _identifier("Unique per job; the idempotency key")]
UserId = Annotated[str, AfterValidator(check_identifier), _identifier("Who is charged and refunded")]
Reference = Annotated[
    str, AfterValidator(check_identifier), _identifier("A purchase or grant: credits one account, once")
]


class JobEnvelope(BaseModel):
    """One job: who asked for it, on which plan, what it costs, and what to do.

    Unknown fields are ignored rather than rejected: producers are deployed before workers in a
    rolling release, and a field the worker does not know yet must not send every job to the DLQ
    (and refund it). Known fields are strict: `credits` must be a JSON integer and `submitted_at`
    must carry a time zone, because the refund ledger and queue-wait metrics depend on them.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    job_id: JobId
    user_id: UserId
    plan: Plan = Field(description="The user's plan; it selects the queue and its priority")
    kind: Annotated[str, Field(min_length=1, max_length=128, description="What the job does")]
    credits: Annotated[int, Field(strict=True, ge=0, description="Credits charged, refunded on failure")]
    submitted_at: AwareDatetime = Field(description="When the user submitted the job (ISO 8601)")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the job, interpreted by its handler"
    )

    @classmethod
    def from_body(cls, body: str) -> JobEnvelope:
        """Parse an SQS message body; raises `pydantic.ValidationError` naming each bad field."""
        return cls.model_validate_json(body)

    def to_body(self) -> str:
        """The SQS message body for this envelope (compact JSON, `Z`-style UTC time preserved)."""
        return self.model_dump_json()

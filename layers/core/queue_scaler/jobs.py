"""The job envelope: the JSON body of every job message (CONTRACTS.md section 4).

Producers write it, workers validate it before running a job, and the DLQ refund function reads it
to know whom to refund and how much. Keeping one model here, in the shared package, is what makes
those three agree.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: A plan's name, as a pool configuration's queues name it (their `plan`, or a name ending in
#: `-<plan>`): any plan a configuration routes is one a job can carry.
PLAN_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Plan = Annotated[str, Field(pattern=PLAN_PATTERN)]

#: The template's plans, from the highest priority to the lowest: the order of its pools' queues.
PLANS: tuple[str, ...] = ("enterprise", "studio", "pro", "starter", "free")

#: Identifiers end up in log lines, metric-free ledger keys and user notifications: printable ASCII
#: without spaces keeps them unambiguous everywhere.
ID_PATTERN = r"^[!-~]{1,128}$"


class JobEnvelope(BaseModel):
    """One job: who asked for it, on which plan, what it costs, and what to do.

    Unknown fields are ignored rather than rejected: producers are deployed before workers in a
    rolling release, and a field the worker does not know yet must not send every job to the DLQ
    (and refund it). Known fields are strict: `credits` must be a JSON integer and `submitted_at`
    must carry a time zone, because the refund ledger and queue-wait metrics depend on them.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    job_id: Annotated[str, Field(pattern=ID_PATTERN, description="Unique per job; the idempotency key")]
    user_id: Annotated[str, Field(pattern=ID_PATTERN, description="Who is charged and refunded")]
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

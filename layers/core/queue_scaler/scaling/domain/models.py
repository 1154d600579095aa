"""Inputs and output of one scaling decision (CONTRACTS.md section 1), as validated models."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from queue_scaler.shared.metric_names import Metric


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class QueueObservation(_Model):
    """One queue's SQS counters, or the error that kept them from being read."""

    name: str
    visible: Annotated[int, Field(ge=0)] = 0
    in_flight: Annotated[int, Field(ge=0)] = 0
    delayed: Annotated[int, Field(ge=0)] = 0
    error: str | None = Field(default=None, description="Why the queue could not be read")


#: What the scaler knows of a group's instance refresh: none running, one running (Pending, InProgress,
#: Cancelling, RollbackInProgress, Baking), or unknown (its state could not be read).
RefreshState = Literal["none", "running", "unknown", "failed"]


class FleetObservation(_Model):
    """The Auto Scaling group: its desired capacity and the instances serving or booting."""

    desired: Annotated[int, Field(ge=0)]
    in_service: Annotated[int, Field(ge=0)] = 0
    pending: Annotated[int, Field(ge=0)] = 0
    leaving: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="Instances on their way out (Spot interruption, rebalance recommendation): counted in "
        "desired until they terminate, but capacity that is going away",
    )
    min_size: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description="The group's own MinSize as observed (None: not observed); desired never goes below it",
    )
    max_size: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description="The group's own MaxSize as observed (None: not observed); AWS refuses a desired above it",
    )
    outdated: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="In-service instances launched from an older launch template version than the group's "
        "(a new AMI or image not yet rolled out)",
    )
    warm_pool: Literal["Stopped", "Running", "Hibernated"] | None = Field(
        default=None,
        description="The group's warm pool's PoolState; None: the group has no warm pool (or it was not read)",
    )
    warmed: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="Warm-pool instances ready to start (Warmed:Stopped, Warmed:Running, Warmed:Hibernated): outside "
        "desired capacity, serving nothing; a scale-out takes them first",
    )
    warming: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Warm-pool instances still being prepared (Warmed:Pending, its hook's wait)"
    )
    refresh: RefreshState = Field(
        default="none",
        description="The group's instance refresh: none, running (Pending, InProgress, Cancelling, "
        "RollbackInProgress, Baking), unknown (unreadable), or failed (the latest ended Failed, Cancelled or "
        "rolled back less than an hour ago: not started again by itself); while running or unknown desired never "
        "goes down",
    )


#: The input kind every pool is observed with: each queue's SQS counters (visible, in flight, delayed),
#: read in one GetQueueAttributes call and carried in `Observation.queues` (CONTRACTS.md section 1).
#: Any other kind a signal needs is read by the reader the composition root maps it to.
QUEUE_COUNTS = "queue_counts"


class QueueReading(_Model):
    """One queue's value of one input kind (its oldest message's age, say), or why it could not be read."""

    name: str
    value: float | None = None
    error: str | None = Field(default=None, description="Why the queue's value could not be read")

    @model_validator(mode="after")
    def _value_or_error(self) -> QueueReading:
        if (self.value is None) == (self.error is None):
            raise ValueError("set exactly one of value and error")
        return self


class Observation(_Model):
    queues: list[QueueObservation]
    fleet: FleetObservation
    inputs: dict[str, list[QueueReading]] = Field(
        default_factory=dict,
        description="The other inputs the pool's signals need, by kind: one reading per queue of the pool",
    )

    def readings(self, kind: str) -> dict[str, QueueReading]:
        """The readings of input `kind` by queue name (empty when it was not observed)."""
        return {reading.name: reading for reading in self.inputs.get(kind, [])}


class Recommendation(_Model):
    at: float
    desired: Annotated[int, Field(ge=0)]
    held: Annotated[float, Field(ge=0)] = Field(
        default=0,
        description="Instances the running messages held in it (their slots, `count_in_flight_as_slots`); "
        "the rest is the queue-driven part, all that `stabilize_queue_part` remembers",
    )


class WorkSample(_Model):
    """The pool's work at one decision: what the arrival-rate signal estimates its rate from."""

    at: float
    work: Annotated[int, Field(ge=0)] = Field(description="Messages queued or running (visible + in flight)")
    in_flight: Annotated[int, Field(ge=0)] = Field(description="Messages running")


class ScaleEvent(_Model):
    at: float
    change: int


def _within[E: (Recommendation, ScaleEvent, WorkSample)](entries: list[E], horizon: float, now: float) -> list[E]:
    """The entries dated in (horizon, now], in their order."""
    return [e for e in entries if horizon < e.at <= now]


#: Work samples older than a decision's dense look-back are kept one per this many seconds: a signal
#: looking back days (the forecast) reads them per quarter hour, and one DynamoDB item (400 KB) holds
#: 14 days of them where one per 10 s tick would not hold one day (tests/functional/test_scaler_forecast.py).
SAMPLE_SPACING_SECONDS = 300.0


def _thinned(samples: list[WorkSample], dense_from: float) -> list[WorkSample]:
    """`samples` (oldest first) with those dated before `dense_from` kept at least SAMPLE_SPACING_SECONDS
    apart: each is kept when it is that far after the last one kept. Applied at every record, an old
    sample once kept stays kept, so the thinned past never shifts."""
    kept: list[WorkSample] = []
    for sample in samples:
        if sample.at < dense_from and kept and sample.at - kept[-1].at < SAMPLE_SPACING_SECONDS:
            continue
        kept.append(sample)
    return kept


class History(_Model):
    """What the scaler recommended and changed recently: the memory behind stabilization and rates."""

    recommendations: list[Recommendation] = Field(default_factory=list)
    scale_events: list[ScaleEvent] = Field(default_factory=list)
    samples: list[WorkSample] = Field(
        default_factory=list,
        description="The pool's work at recent decisions (kept for the arrival_rate and forecast signals)",
    )

    def pruned(self, now: float, keep_seconds: float) -> History:
        """Only the entries a decision at `now` can still look at: none older than `keep_seconds`,
        none dated after `now` (a clock ahead must not hold the fleet for as long as it is ahead)."""
        horizon = now - keep_seconds
        return History(
            recommendations=_within(self.recommendations, horizon, now),
            scale_events=_within(self.scale_events, horizon, now),
            samples=_within(self.samples, horizon, now),
        )

    def future_count(self, now: float) -> int:
        """How many entries are dated after `now`: written by a clock that was ahead of this one."""
        lists = (self.recommendations, self.scale_events, self.samples)
        return sum(1 for entries in lists for e in entries if e.at > now)

    def as_of(self, now: float) -> History:
        """The entries dated at or before `now`; later ones are ignored (see `future_count`)."""
        if not self.future_count(now):
            return self
        return History(
            recommendations=[r for r in self.recommendations if r.at <= now],
            scale_events=[e for e in self.scale_events if e.at <= now],
            samples=[s for s in self.samples if s.at <= now],
        )

    def record(
        self, decision: Decision, now: float, keep_seconds: float, dense_seconds: float | None = None
    ) -> History:
        """The history after `decision` at `now`: its recommendation (with the part the running messages
        held), its change and its work sample appended, pruned to `keep_seconds`. A recommendation from
        partial metrics understates the need: it must not steer later decisions, so it is not kept.

        With `dense_seconds` (shorter than `keep_seconds`), every entry of the last `dense_seconds` is
        kept, and beyond it only work samples, thinned to one per SAMPLE_SPACING_SECONDS (the
        recommendations and scale events serve windows of at most `dense_seconds`)."""
        # The old entries are pruned first (the same entries as pruning after appending), and the
        # history is validated once: the simulator records a long history every tick.
        horizon = now - keep_seconds
        recent = horizon if dense_seconds is None else max(horizon, now - dense_seconds)
        recommendations = _within(self.recommendations, recent, now)
        if not decision.unavailable_queues and recent < now:
            recommendations.append(Recommendation(at=now, desired=decision.recommendation, held=decision.held))
        events = _within(self.scale_events, recent, now)
        if decision.change and recent < now:
            events.append(ScaleEvent(at=now, change=decision.change))
        samples = _within(self.samples, horizon, now)
        if decision.sample is not None and horizon < decision.sample.at <= now:
            samples.append(decision.sample)
        if recent > horizon:
            samples = _thinned(samples, recent)
        return History(recommendations=recommendations, scale_events=events, samples=samples)

    def without_event(self, at: float) -> History:
        """The history without the scale events made at `at` (a change that did not happen)."""
        return History(
            recommendations=self.recommendations,
            scale_events=[e for e in self.scale_events if e.at != at],
            samples=self.samples,
        )


class LimitedBy(StrEnum):
    """The last rule that moved the result away from the plain need."""

    NONE = "None"
    WITHIN_TOLERANCE = "WithinTolerance"
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    MAX_SIZE = "MaxSize"
    MIN_SIZE = "MinSize"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    ACTIVATION = "Activation"
    INSTANCE_REFRESH = "InstanceRefresh"


@dataclass(frozen=True)
class Step:
    """What one rule of the decision did: the value so far, the limit it names (None: it named none),
    and its explanation line (None: nothing worth saying). `joins` puts the line after the previous
    one, as one sentence."""

    value: int
    limited_by: LimitedBy | None = None
    line: str | None = None
    joins: bool = False


class Decision(_Model):
    """One pool's decision, with a human-readable line for every step that shaped it."""

    pool: str
    current: int
    recommendation: int = Field(description="The need after tolerance and activation; what history keeps")
    desired: int
    limited_by: LimitedBy
    explanation: list[str]
    raw_need: float = Field(description="Sum over readable queues of backlog / target")
    backlog: int = Field(description="Backlog counted over readable queues")
    unavailable_queues: list[str] = Field(default_factory=list)
    signal: str = Field(default="backlog", description="The signal whose proposal was the largest")
    ignored_history: int = Field(
        default=0, description="History entries dated after `now` (a clock ahead), ignored by this decision"
    )
    # What the history keeps of this decision besides its recommendation; not part of the printed
    # decision (CONTRACTS.md section 1 is unchanged).
    held: float = Field(default=0, exclude=True, description="Instances the running messages hold")
    sample: WorkSample | None = Field(default=None, exclude=True, description="The work sample to keep")
    figures: dict[Metric, float] = Field(
        default_factory=dict, exclude=True, description="The signals' figures the scaler publishes for the pool"
    )

    @property
    def change(self) -> int:
        return self.desired - self.current

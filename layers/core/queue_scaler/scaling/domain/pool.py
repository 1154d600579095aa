"""A pool as decisions see it: its group, bounds, queues, policy and signals, and the rules on them.

The configuration document (queue_scaler.scaling.config) lists these models, a `queue-scaler decide` request
(CONTRACTS.md section 1) carries one, and the simulator and local cloud build them. The signals a pool
names are validated by the signals themselves (queue_scaler.scaling.domain.signals): their settings models and
checks, and how far back each looks. Unknown fields are rejected so that a misspelled setting fails
loudly instead of silently taking a default.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from queue_scaler.scaling.domain import signals as registry
from queue_scaler.shared.jobs import Plan

PolicyType = Literal["Instances", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]

#: Names of pools and queues end up in ARNs, metric dimensions and DynamoDB keys.
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,80}$"
#: The longest look-back kept at every decision's detail: the behavior's windows and the arrival-rate
#: window are at most an hour; a signal looking further (the forecast) reads thinned samples beyond it.
DENSE_SECONDS = 3600.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RatePolicy(_Model):
    """One HPA-style rate policy: at most `value` instances (or percent) per `period_seconds`."""

    type: PolicyType = Field(description="Instances (a fixed number) or Percent of the size at period start")
    value: Annotated[int, Field(gt=0, description="Instances or percent allowed per period")]
    period_seconds: Annotated[float, Field(gt=0, le=3600, description="Length of the look-back period")]

    @field_validator("type", mode="before")
    @classmethod
    def _pods_alias(cls, value: Any) -> Any:
        # The Kubernetes HPA calls fixed-count policies "Pods"; people copy HPA specs verbatim.
        return "Instances" if value == "Pods" else value


class ScalingRules(_Model):
    """Stabilization window and rate policies for one direction (HPA `behavior.scaleUp/scaleDown`)."""

    stabilization_window_seconds: Annotated[float, Field(ge=0, le=3600)]
    select_policy: SelectPolicy = "Max"
    policies: list[RatePolicy]
    tolerance: Annotated[float | None, Field(ge=0, lt=1)] = Field(
        default=None,
        description="This direction's tolerance band (HPA behavior.scaleUp/scaleDown.tolerance); the "
        "pool's tolerance when omitted",
    )


class ScaleUpRules(ScalingRules):
    """Scale-up defaults for EC2 fleets: no stabilization and no rate limit.

    Instances take minutes to boot, so a burst must ask for its full need in one decision (bounded
    only by max_size); the HPA's gradual 4-pods-or-100% ramp would add a boot time per doubling.
    """

    stabilization_window_seconds: Annotated[float, Field(ge=0, le=3600)] = 0
    policies: list[RatePolicy] = Field(default_factory=list)


class ScaleDownRules(ScalingRules):
    """Scale-down defaults: the HPA's 300 s stabilization, then up to 100% per 15 s.

    Stabilization keeps a fleet through the short lulls of bursty traffic; once the highest
    recommendation of the last 5 minutes is lower, there is no reason to pay for idle instances.
    """

    stabilization_window_seconds: Annotated[float, Field(ge=0, le=3600)] = 300
    policies: list[RatePolicy] = Field(
        default_factory=lambda: [RatePolicy(type="Percent", value=100, period_seconds=15)]
    )


class Behavior(_Model):
    scale_up: ScaleUpRules = Field(default_factory=ScaleUpRules)
    scale_down: ScaleDownRules = Field(default_factory=ScaleDownRules)

    def longest_window_seconds(self) -> float:
        """How much history the decision can look at: stabilization windows and rate periods."""
        spans = [self.scale_up.stabilization_window_seconds, self.scale_down.stabilization_window_seconds]
        spans += [p.period_seconds for p in self.scale_up.policies + self.scale_down.policies]
        return max(spans)


class QueueConfig(_Model):
    """One SQS queue a pool serves, with how many of its messages one instance should carry."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    url: str | None = Field(default=None, description="Queue URL; looked up by name when omitted")
    plan: Plan | None = Field(
        default=None,
        description="The plan whose jobs the producer sends here; when omitted, the plan the name ends "
        "with (`-<plan>`), or every plan for a pool's only queue",
    )
    target_per_instance: Annotated[float | None, Field(gt=0)] = None
    max_wait_seconds: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="Wait objective; with the pool's seconds_per_message and slots_per_instance it "
        "gives target_per_instance = slots_per_instance * max_wait_seconds / seconds_per_message",
    )

    @model_validator(mode="after")
    def _one_target(self) -> QueueConfig:
        if (self.target_per_instance is None) == (self.max_wait_seconds is None):
            raise ValueError("set exactly one of target_per_instance and max_wait_seconds")
        return self


class PoolConfig(_Model):
    """A pool: one Auto Scaling group serving one or more queues (one per plan, highest first)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    auto_scaling_group: str | None = Field(
        default=None, description="Auto Scaling group name; the pool's name when omitted"
    )
    min_size: Annotated[int, Field(ge=0)] = 0
    max_size: Annotated[int, Field(ge=0, le=10_000)]
    queues: Annotated[list[QueueConfig], Field(min_length=1)]
    kinds: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list,
        description="Job kinds the producer routes to this pool (shell-style patterns such as "
        "`video.*`); when no pool lists a kind, the pool named by the kind's first dotted part serves it",
    )
    count_in_flight: bool = True
    count_delayed: bool = False
    activation_backlog: Annotated[float, Field(ge=0)] = 0
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1
    seconds_per_message: Annotated[float | None, Field(gt=0)] = None
    slots_per_instance: Annotated[int, Field(ge=1)] = 1
    keep_busy_instances: bool = Field(
        default=False,
        description="Scale-down never goes below the instances the queued and in-flight messages "
        "occupy: ceil((visible + in_flight [+ delayed]) / slots_per_instance). Those instances would "
        "be busy, so removing them saves nothing and only makes the queued work wait longer",
    )
    count_in_flight_as_slots: bool = Field(
        default=False,
        description="Count each in-flight message as the worker slot it holds (1 / slots_per_instance "
        "of an instance) instead of against its queue's target. The target then sizes only the waiting "
        "messages (how many one instance clears within the wait objective), and a fleet busy with a "
        "steady flow keeps the instances that flow occupies without a standing backlog. Needs "
        "count_in_flight",
    )
    count_in_flight_as_slots_always: bool = Field(
        default=False,
        description="With count_in_flight_as_slots: count each in-flight message as its slot even when "
        "the target is below slots_per_instance (a queue whose wait objective is shorter than its jobs). "
        "The need may then fall below backlog / target: the target sizes the waiting messages, the slots "
        "the running ones. Needs count_in_flight_as_slots",
    )
    stabilize_queue_part: bool = Field(
        default=False,
        description="Scale-down stabilization remembers only the queue-driven part of each past "
        "recommendation: a past recommendation counts as its part beyond the instances its running "
        "messages held (count_in_flight_as_slots), plus the instances the running messages hold now, "
        "never more than it was. Jobs that have ended hold no instance through the window; a lull in "
        "the queue still does",
    )
    behavior: Behavior = Field(default_factory=Behavior)
    signals: dict[str, SerializeAsAny[BaseModel]] = Field(
        default_factory=lambda: _signal_settings({"backlog": {}}),
        description="The scaling signals this pool uses, by name, each with its own settings "
        "(queue_scaler.scaling.domain.signals); the pool's need is the largest of their proposals. Default: backlog",
        json_schema_extra={"additionalProperties": {"type": "object"}},
    )

    @field_validator("signals", mode="before")
    @classmethod
    def _known_signals(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return _signal_settings(value)

    @model_validator(mode="after")
    def _consistent(self) -> PoolConfig:
        if self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) is below min_size ({self.min_size})")
        if self.count_in_flight_as_slots and not self.count_in_flight:
            raise ValueError("count_in_flight_as_slots needs count_in_flight")
        if self.count_in_flight_as_slots_always and not self.count_in_flight_as_slots:
            raise ValueError("count_in_flight_as_slots_always needs count_in_flight_as_slots")
        names = [q.name for q in self.queues]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"queues: duplicate queue names {duplicates}")
        for index, queue in enumerate(self.queues):
            if queue.max_wait_seconds is None:
                continue
            if self.seconds_per_message is None:
                raise ValueError(f"queues.{index}.max_wait_seconds needs the pool's seconds_per_message")
            # A derived target that underflows to 0 or overflows to infinity would divide by zero or
            # ask for infinitely many instances: refuse it here, naming the field.
            target = self.target_for(queue)
            if not (math.isfinite(target) and target > 0):
                raise ValueError(
                    f"queues.{index}.max_wait_seconds: slots_per_instance * max_wait_seconds / "
                    f"seconds_per_message = {target} is not a positive finite target"
                )
        if not self.signals:
            raise ValueError("signals: name at least one signal (backlog is the default)")
        for name, settings in self.signals.items():
            registry.get(name).check(self, settings)
        return self

    @property
    def group_name(self) -> str:
        return self.auto_scaling_group or self.name

    def history_seconds(self) -> float:
        """How much history a decision can look at: the behavior's windows and periods, and each
        signal's own look-back."""
        looks = [registry.get(name).history_seconds(settings) for name, settings in self.signals.items()]
        return max([self.behavior.longest_window_seconds(), *looks])

    def dense_seconds(self) -> float:
        """How far back the history keeps every entry: the behavior's windows and periods, and the signals'
        look-backs up to DENSE_SECONDS. Beyond it only thinned work samples are kept (`History.record`)."""
        looks = [min(DENSE_SECONDS, registry.get(n).history_seconds(s)) for n, s in self.signals.items()]
        return max([self.behavior.longest_window_seconds(), *looks])

    def slots_held(self, target: float) -> bool:
        """Whether a queue of this target counts its in-flight messages as the slots they hold."""
        if not self.count_in_flight_as_slots:
            return False
        return self.count_in_flight_as_slots_always or self.slots_per_instance < target

    def target_for(self, queue: QueueConfig) -> float:
        """Messages one instance should carry for this queue (CONTRACTS.md section 1)."""
        if queue.target_per_instance is not None:
            return queue.target_per_instance
        if queue.max_wait_seconds is None or self.seconds_per_message is None:
            raise ValueError(f"queue {queue.name}: no target_per_instance and no max_wait_seconds")
        return self.slots_per_instance * queue.max_wait_seconds / self.seconds_per_message


def _signal_settings(value: dict[str, Any]) -> dict[str, BaseModel]:
    """Each named signal's settings, validated by the model its signal declares."""
    known = registry.registered()
    settings: dict[str, BaseModel] = {}
    for name, raw in value.items():
        signal = known.get(name)
        if signal is None:
            raise ValueError(f"signals.{name}: unknown signal (known: {', '.join(sorted(known))})")
        if isinstance(raw, signal.settings):
            settings[name] = raw
            continue
        try:
            settings[name] = signal.settings.model_validate(raw or {})
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ValueError(f"signals.{name}: {problems}") from None
    return settings

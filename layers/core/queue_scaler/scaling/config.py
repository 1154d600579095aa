"""The configuration document: the validated JSON the SSM parameter (or a config file) holds.

The pools it lists are the domain's own models (queue_scaler.scaling.domain.pool): the same models validate
the SSM parameter the scaler reads, the `pool` of a `queue-scaler decide` request (CONTRACTS.md
section 1) and the pools the simulator and local cloud build. This module keeps what belongs to the
document as a whole: its plans, the uniqueness of pool names and groups, the recommended policy and
the JSON Schema. Unknown fields are rejected so that a misspelled setting fails loudly instead of
silently taking a default.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.shared.jobs import Plan


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PlanConfig(_Model):
    """Settings of one plan, whichever pool serves its jobs."""

    max_credits: Annotated[int, Field(gt=0)] = Field(
        description="The most credits one job of this plan may carry (`submit --credits`); the refund "
        "cap (REFUND_CAP) when omitted or above it"
    )


class ScalerConfig(_Model):
    """The whole configuration: the JSON the SSM parameter (or a config file) holds."""

    pools: Annotated[list[PoolConfig], Field(min_length=1)]
    plans: dict[Plan, PlanConfig] = Field(
        default_factory=dict, description="Settings per plan name; a plan not listed takes the defaults"
    )

    def max_credits(self, plan: str) -> int | None:
        """The plan's own cap on one job's credits, None when it sets none."""
        settings = self.plans.get(plan)
        return settings.max_credits if settings is not None else None

    @model_validator(mode="after")
    def _unique_pools(self) -> ScalerConfig:
        names = [p.name for p in self.pools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pools: duplicate pool names {duplicates}")
        groups = [p.group_name for p in self.pools]
        shared = sorted({g for g in groups if groups.count(g) > 1})
        if shared:
            raise ValueError(f"pools: Auto Scaling groups {shared} are claimed by more than one pool")
        return self


#: The pool fields that describe the pool itself (its group, bounds, queues, jobs and slots); every
#: other field is policy: how the scaler sizes the pool.
POOL_FACTS = frozenset(
    {
        "name",
        "auto_scaling_group",
        "min_size",
        "max_size",
        "queues",
        "kinds",
        "seconds_per_message",
        "slots_per_instance",
    }
)

#: The recommended policy (docs/benchmark.md, "Recommended setting"): what every built-in benchmark
#: scenario runs and what the template deploys (tests/contract/test_recommended_setting.py), one
#: setting for every traffic shape, no per-scenario tuning. Written here only: `make generate`
#: (devkit/templategen.py) writes it into templates/pool.yaml's pool configuration.
RECOMMENDED: dict[str, Any] = {
    "keep_busy_instances": True,
    "count_in_flight_as_slots": True,
    "count_in_flight_as_slots_always": True,
    "stabilize_queue_part": True,
    "behavior": {"scale_down": {"stabilization_window_seconds": 900}},
    "signals": {
        "backlog": {},
        "arrival_rate": {"window_seconds": 600, "staffing": 1.4, "burst_window_seconds": 60, "dispersion": True},
    },
}


def recommended(pool: PoolConfig, overrides: dict[str, Any] | None = None) -> PoolConfig:
    """`pool`'s facts with the recommended policy in place of its own, and then `overrides` (policy
    fields someone set on purpose: a scenario file's `scaler`) over it."""
    facts = pool.model_dump(include=set(POOL_FACTS), exclude_unset=True)
    policy = dict(RECOMMENDED)
    if pool.seconds_per_message is None:
        # The arrival-rate signal needs the mean job time (Little's law); without it, backlog alone.
        policy["signals"] = {k: v for k, v in RECOMMENDED["signals"].items() if k != "arrival_rate"}
    chosen = {k: v for k, v in (overrides or {}).items() if k not in POOL_FACTS}
    return PoolConfig.model_validate(facts | policy | chosen)


def policy(pool: PoolConfig) -> dict[str, Any]:
    """The policy part of a pool's configuration (every field but its facts), defaults included."""
    return pool.model_dump(mode="json", exclude=set(POOL_FACTS))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the scaler configuration, for editors and for review of config changes."""
    return ScalerConfig.model_json_schema()

"""Scenario files for `queue-scaler simulate` (CONTRACTS.md section 5), as validated models.

A scenario names the workload (arrivals and service times per queue), the fleet (boot time, slots
per instance, size bounds, and the `fleet:` block: how the Auto Scaling group launches, protects,
chooses and drains instances, and how stale the counts are that controllers read) and the pool
configuration every autoscaler gets. Errors name the field by its dotted path, as `queue-scaler
decide` does.

A pool named like one of template.yaml's pools (messaging, video, ai) takes its drain window
(`<Pool>DrainSeconds`) and its wait objective (`<Pool>WaitObjectiveSeconds`) from the template's
defaults, read from the template itself (never a copy). Any other pool may state `drain_seconds` (one
of the template's allowed values), or gets the template's rule for it: the smallest allowed value at
least the pool's p99 job length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from devkit import template
from devkit.sim import billing
from queue_scaler.scaling.domain.pool import NAME_PATTERN, PoolConfig, QueueConfig
from queue_worker.settings import WorkerSettings

#: Built-in scenarios ship next to this module; `simulate NAME` finds them by name.
BUILTIN_DIR = Path(__file__).parent / "scenarios"
#: The held-out set (issue 26): drawn once by devkit/sim/heldout.py, never tuned on.
HELDOUT_DIR = BUILTIN_DIR / "heldout"
#: Scenarios for the features an operator turns on (schedules, the forecast), run by name and left out
#: of `make bench`'s default run (their days of simulated time would more than double it).
FEATURES_DIR = BUILTIN_DIR / "features"
#: Relative trace paths (e.g. `../shared/traces/x.csv`) are tried from the working directory, then
#: from the repository root, so that the built-ins run from any directory of a fresh clone.
REPO_ROOT = Path(__file__).resolve().parents[2]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Burst(_Model):
    """`count` jobs arriving uniformly at random within `[at, at + over_seconds]`."""

    at: Annotated[float, Field(ge=0)]
    count: Annotated[int, Field(ge=1)]
    over_seconds: Annotated[float, Field(ge=0)] = 0


class Poisson(_Model):
    """A Poisson process of `per_second` arrivals between `start` and `end` (default: the whole run)."""

    per_second: Annotated[float, Field(gt=0)]
    start: Annotated[float, Field(ge=0)] = 0
    end: Annotated[float | None, Field(gt=0)] = None


class Trace(_Model):
    """Arrivals replayed from a CSV file.

    `counts`: one row per bin of `bin_seconds`, `column` holding the arrivals in that bin, spread
    uniformly inside it. `timestamps`: one row per request, `column` holding its time (ISO text);
    times are taken relative to the first row. `azure-functions`: the Azure Functions 2019 per-minute
    invocation file, summed over the functions whose average duration (from `durations_path`) lies in
    `[min_average_seconds, max_average_seconds)`. `scale` thins (below 1) or multiplies the arrivals;
    `start_seconds` skips the beginning of the trace.
    """

    path: str
    format: Literal["counts", "timestamps", "azure-functions"] = "counts"
    column: str | None = None
    bin_seconds: Annotated[float, Field(gt=0)] = 60
    scale: Annotated[float, Field(gt=0)] = 1.0
    start_seconds: Annotated[float, Field(ge=0)] = 0
    durations_path: str | None = None
    min_average_seconds: Annotated[float, Field(ge=0)] = 0
    max_average_seconds: Annotated[float, Field(gt=0)] = float(10**9)

    @model_validator(mode="after")
    def _format_fields(self) -> Trace:
        if self.format == "counts" and self.column is None:
            raise ValueError("column: required for format 'counts'")
        if self.format == "azure-functions" and self.durations_path is None:
            raise ValueError("durations_path: required for format 'azure-functions'")
        return self


#: A day of simulated time: the simulator's clock reads as Unix time, so day k starts at k x DAY UTC.
DAY = 86400.0


class Daily(_Model):
    """One day's arrivals (`day`: a burst, Poisson process or trace, its times counted from the start of
    that day's pattern and cut at `length_seconds`) repeated on `days` consecutive days, with seeded
    day-to-day variation: day k's pattern starts at `k x 86400 + offset_seconds` plus a shift drawn
    uniformly in `[-jitter_seconds, jitter_seconds]`, and its volume (a burst's count, a Poisson rate,
    a trace's scale) is multiplied by a log-normal factor of median 1 and log-standard deviation
    `volume_sigma`. Every day draws its own arrivals (a trace's thinning, a burst's times) from the
    queue's generator."""

    days: Annotated[int, Field(ge=1, le=7)]
    day: Arrivals
    offset_seconds: Annotated[float, Field(ge=0, lt=DAY)] = 0
    length_seconds: Annotated[float, Field(gt=0, le=DAY)] = DAY
    jitter_seconds: Annotated[float, Field(ge=0, le=6 * 3600)] = 0
    volume_sigma: Annotated[float, Field(ge=0, le=1)] = 0

    @model_validator(mode="after")
    def _one_level(self) -> Daily:
        if self.day.daily is not None:
            raise ValueError("day: a daily pattern repeats a burst, poisson or trace, not another daily pattern")
        return self


class Arrivals(_Model):
    """Exactly one arrival process."""

    burst: Burst | None = None
    poisson: Poisson | None = None
    trace: Trace | None = None
    daily: Daily | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Arrivals:
        given = [k for k in ("burst", "poisson", "trace", "daily") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of burst, poisson, trace, daily (got {given or 'none'})")
        return self


# `Daily.day` names Arrivals, defined after it.
Daily.model_rebuild()


class LogNormal(_Model):
    """A log-normal service time given by its median and 90th percentile; `max` caps each draw (the
    longest run the source trace recorded: a fitted tail must not invent jobs of days)."""

    median: Annotated[float, Field(gt=0)]
    p90: Annotated[float, Field(gt=0)]
    max: Annotated[float | None, Field(gt=0)] = None

    @model_validator(mode="after")
    def _ordered(self) -> LogNormal:
        if self.p90 < self.median:
            raise ValueError(f"p90 ({self.p90}) is below median ({self.median})")
        if self.max is not None and self.max < self.p90:
            raise ValueError(f"max ({self.max}) is below p90 ({self.p90})")
        return self


class FromTrace(_Model):
    """Service time `base + per_unit * <column>` from each request's row of a `timestamps` trace."""

    column: str
    base: Annotated[float, Field(ge=0)] = 0
    per_unit: Annotated[float, Field(ge=0)]


class Service(_Model):
    """Exactly one service-time distribution (seconds)."""

    fixed: Annotated[float | None, Field(gt=0)] = None
    lognormal: LogNormal | None = None
    from_trace: FromTrace | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Service:
        given = [k for k in ("fixed", "lognormal", "from_trace") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of fixed, lognormal, from_trace (got {given or 'none'})")
        return self


class QueueSpec(_Model):
    """One SQS queue of a pool: its target (as in the pool configuration) and its workload."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    target_per_instance: Annotated[float | None, Field(gt=0)] = None
    max_wait_seconds: Annotated[float | None, Field(gt=0)] = None
    arrivals: Arrivals | list[Arrivals]
    service_seconds: Service

    @model_validator(mode="after")
    def _trace_service(self) -> QueueSpec:
        if self.service_seconds.from_trace is not None:
            specs = self.arrival_specs()
            if len(specs) != 1 or specs[0].trace is None or specs[0].trace.format != "timestamps":
                raise ValueError("service_seconds.from_trace: needs one `timestamps` trace as arrivals")
        return self

    def arrival_specs(self) -> list[Arrivals]:
        return self.arrivals if isinstance(self.arrivals, list) else [self.arrivals]


class BootSeconds(_Model):
    """Launch request to in service: uniform in `[min, max]`."""

    min: Annotated[float, Field(ge=0)]
    max: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _ordered(self) -> BootSeconds:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class SlowBoots(_Model):
    """The boot-time tail: a `fraction` of launches take `factor` times their drawn boot time (a slow
    AMI pull, a cold EBS volume, a container image fetched from a busy registry)."""

    fraction: Annotated[float, Field(ge=0, le=1)] = 0.05
    factor: Annotated[float, Field(ge=1, le=10)] = 2.0


class Fleet(_Model):
    """How the Auto Scaling group runs the instances, the same for every policy (defaults: as AWS runs
    a group of the template's pools; docs/benchmark.md "Fleet")."""

    availability_zones: Annotated[int, Field(ge=1, le=6)] = Field(
        default=3, description="Zones the group balances launches and terminations across"
    )
    scale_in_protection: bool = Field(
        default=True,
        description="Workers protect their instance from scale-in while they hold a job (the user data "
        "sets SCALE_IN_PROTECTION=true; queue_worker/protection.py)",
    )
    protection_linger_seconds: Annotated[float, Field(ge=0, le=300)] = Field(
        default=WorkerSettings.model_fields["protection_linger_seconds"].default,
        description="How long protection outlives a worker's last job (PROTECTION_LINGER_SECONDS's default)",
    )
    slow_boots: SlowBoots = Field(default_factory=SlowBoots)
    launch_failure_rate: Annotated[float, Field(ge=0, le=0.5)] = Field(
        default=0.01,
        description="Launches that never become healthy: abandoned at the end of their boot, and replaced",
    )
    default_instance_warmup_seconds: Annotated[float | None, Field(ge=0, le=3600)] = Field(
        default=None, description="The group's DefaultInstanceWarmup; boot_seconds.max when omitted"
    )
    sqs_relative_error: Annotated[float, Field(ge=0, le=0.5)] = Field(
        default=0.05,
        description="ApproximateNumberOf* counts read from SQS are off by up to this fraction (uniform)",
    )
    cloudwatch_delay_seconds: Annotated[float, Field(ge=0, le=600)] = Field(
        default=60, description="A 1-minute CloudWatch datapoint reaches its alarms this long after it is sampled"
    )
    cloudwatch_hires_delay_seconds: Annotated[float, Field(ge=0, le=600)] = Field(
        default=10, description="A 10-second (high-resolution) datapoint reaches its alarms this long after"
    )
    warm_start_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=billing.WARM_START_SECONDS,
        description="A scale-out to in service for an instance taken from a pool's warm pool (billing.py cites it)",
    )


#: A warm pool's PoolState (templates/pool.yaml's WarmPoolState, "off" aside).
WarmState = Literal["Stopped", "Hibernated", "Running"]


class WarmPoolSpec(_Model):
    """A pool's warm pool, as PutWarmPool (and templates/pool.yaml's WarmPool* parameters) configure it."""

    state: WarmState = Field(
        default="Stopped", description="PoolState: the state prepared instances wait in (WarmPoolState)"
    )
    min_size: Annotated[int, Field(ge=0)] = Field(
        default=0, description="MinSize: instances the warm pool keeps whatever the desired capacity"
    )
    max_prepared_capacity: Annotated[int | None, Field(ge=0)] = Field(
        default=None,
        description="MaxGroupPreparedCapacity: instances in the group and the warm pool together; omitted: "
        "AWS's default, the group's max size (the pool then holds max_size - desired)",
    )
    reuse_on_scale_in: bool = Field(
        default=False, description="InstanceReusePolicy.ReuseOnScaleIn: a scale-in returns the drained instance"
    )

    def size(self, desired: int, max_size: int) -> int:
        """The instances the warm pool holds at this desired capacity (PutWarmPool: "Amazon EC2 Auto
        Scaling launches and maintains the difference between the group's maximum capacity and its
        desired capacity", or MaxGroupPreparedCapacity's; 0 when desired exceeds it, unless MinSize)."""
        prepared = max_size if self.max_prepared_capacity is None else self.max_prepared_capacity
        return max(self.min_size, prepared - desired)


def _allowed_drains() -> tuple[float, ...]:
    return tuple(sorted(next(iter(template_pools().values()))["allowed_drain_seconds"]))


@lru_cache(maxsize=1)
def template_pools() -> dict[str, dict[str, Any]]:
    """The template's pools by PoolName, with their drain window, wait objective and allowed drains."""
    root = template.load()
    defaults = {name: str(p["Default"]) for name, p in root["Parameters"].items() if "Default" in p}
    found: dict[str, dict[str, Any]] = {}
    for pool in template.pools(root):
        given = root["Resources"][pool.logical_id]["Properties"]["Parameters"]
        drain = given["DrainSeconds"]
        found[pool.name] = {
            "drain_seconds": float(template.resolve(drain, defaults)),
            "allowed_drain_seconds": tuple(float(v) for v in root["Parameters"][drain["Ref"]]["AllowedValues"]),
            "wait_objective_seconds": float(template.resolve(given["WaitObjectiveSeconds"], defaults)),
            "instance_type": template.resolve(given["InstanceTypes"], defaults).split(",")[0],
        }
    return found


class PoolSpec(_Model):
    """One Auto Scaling group and the queues its workers serve, highest priority first."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    slots_per_instance: Annotated[int, Field(ge=1)] = 1
    min_size: Annotated[int, Field(ge=0)] = 0
    max_size: Annotated[int, Field(ge=1, le=10_000)]
    fixed_size: Annotated[int | None, Field(ge=0)] = Field(
        default=None, description="The `fixed` policy's constant fleet; max_size when omitted"
    )
    scaler: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra PoolConfig fields for queue-scaler (tolerance, behavior, ...)",
    )
    drain_seconds: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="The terminate hook's drain window: the template's <Pool>DrainSeconds for its pools",
    )
    warm_pool: WarmPoolSpec | None = Field(default=None, description="The group's warm pool; none when omitted")
    instance_type: str | None = Field(
        default=None,
        description="What an instance is billed as: the template's first <Pool>InstanceTypes for its pools, "
        f"else {billing.DEFAULT_INSTANCE_TYPE}",
    )
    queues: Annotated[list[QueueSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _drain(self) -> PoolSpec:
        allowed = _allowed_drains()
        if self.drain_seconds is not None and self.drain_seconds not in allowed:
            raise ValueError(f"drain_seconds: {self.drain_seconds:g} is not one of the template's {allowed}")
        try:
            billing.storage_share(self.billed_type)
        except ValueError as error:
            raise ValueError(f"instance_type: {error}") from None
        return self

    @property
    def billed_type(self) -> str:
        """The instance type the pool is billed as."""
        if self.instance_type is not None:
            return self.instance_type
        known = template_pools().get(self.name)
        return billing.DEFAULT_INSTANCE_TYPE if known is None else str(known["instance_type"])

    def drain_window(self, service_seconds: Sequence[float]) -> float:
        """Seconds a terminating instance's worker drains before releasing what it still runs: as
        given, else the template's default for its pool, else the template's rule for DrainSeconds
        (at least the pool's p99 job length: the smallest allowed value above the p99 of
        `service_seconds`, the pool's jobs, or the largest allowed value)."""
        if self.drain_seconds is not None:
            return self.drain_seconds
        known = template_pools().get(self.name)
        if known is not None:
            return float(known["drain_seconds"])
        allowed = _allowed_drains()
        if not service_seconds:
            return allowed[0]
        ranked = sorted(service_seconds)
        p99 = ranked[min(len(ranked) - 1, math.ceil(0.99 * len(ranked)) - 1)]
        return next((d for d in allowed if d >= p99), allowed[-1])

    def wait_objective(self, queue: QueueSpec) -> float | None:
        """The queue's wait objective: its max_wait_seconds, else its template pool's, else none."""
        if queue.max_wait_seconds is not None:
            return queue.max_wait_seconds
        known = template_pools().get(self.name)
        return None if known is None else float(known["wait_objective_seconds"])

    def pool_config(self) -> PoolConfig:
        """The pool configuration queue-scaler runs with; peers read the same targets and bounds."""
        queues = [
            QueueConfig(name=q.name, target_per_instance=q.target_per_instance, max_wait_seconds=q.max_wait_seconds)
            for q in self.queues
        ]
        return PoolConfig(
            name=self.name,
            min_size=self.min_size,
            max_size=self.max_size,
            slots_per_instance=self.slots_per_instance,
            queues=queues,
            **self.scaler,
        )

    @property
    def constant_size(self) -> int:
        return self.max_size if self.fixed_size is None else self.fixed_size


class Scenario(_Model):
    """A workload and the fleets that serve it."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str = ""
    duration_seconds: Annotated[float, Field(gt=0, le=7 * 86400)]
    seed: int = 0
    boot_seconds: BootSeconds
    drain_limit_seconds: Annotated[float, Field(ge=0)] = Field(
        default=6 * 3600,
        description="How long after duration_seconds the run may go on finishing work and scaling in",
    )
    fleet: Fleet = Field(default_factory=Fleet)
    pools: Annotated[list[PoolSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _valid_pools(self) -> Scenario:
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pools: duplicate pool names {sorted(n for n in names if names.count(n) > 1)}")
        queues = [q.name for p in self.pools for q in p.queues]
        if len(set(queues)) != len(queues):
            # SQS queue names are unique in an account and Region: per-queue metrics are keyed by them.
            raise ValueError(f"pools: duplicate queue names {sorted({n for n in queues if queues.count(n) > 1})}")
        for index, pool in enumerate(self.pools):
            if pool.max_size < pool.min_size:
                raise ValueError(f"pools.{index}.max_size: {pool.max_size} is below min_size {pool.min_size}")
            try:
                pool.pool_config()
            except ValueError as error:
                raise ValueError(f"pools.{index}: not a valid pool configuration: {error}") from None
        return self

    @property
    def warmup_seconds(self) -> float:
        """The group's default instance warmup: as given, else the longest boot (AWS's advice: the
        time an instance takes to be ready, never the 300 s fallback of an unset warmup)."""
        given = self.fleet.default_instance_warmup_seconds
        return self.boot_seconds.max if given is None else given


def _suite(folder: Path) -> list[str]:
    order = (folder / "SUITE").read_text(encoding="utf-8").split()
    return [name for name in order if (folder / f"{name}.yaml").is_file()]


def builtin_names() -> list[str]:
    """The built-in suite, in the order `bench` runs it."""
    return _suite(BUILTIN_DIR)


def heldout_names() -> list[str]:
    """The held-out suite (never tuned on), in the order `bench` runs it."""
    return _suite(HELDOUT_DIR)


def feature_names() -> list[str]:
    """The feature scenarios (schedules, forecast), in the order `bench --scenario` lists them."""
    return _suite(FEATURES_DIR)


def scenario_path(name_or_path: str) -> Path:
    """A file path as given, or the built-in, held-out or feature scenario of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for folder in (BUILTIN_DIR, HELDOUT_DIR, FEATURES_DIR):
        named = folder / f"{name_or_path}.yaml"
        if named.is_file():
            return named
    raise FileNotFoundError(
        f"no scenario file {name_or_path!r} and no built-in, held-out or feature scenario of that name (built-ins: "
        f"{', '.join(builtin_names())}; held-out: {', '.join(heldout_names())}; features: {', '.join(feature_names())})"
    )


def load_scenario(name_or_path: str) -> Scenario:
    """Read and validate a scenario file (raises pydantic.ValidationError naming the field, and
    EmptyScenario for a file with nothing in it)."""
    path = scenario_path(name_or_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        raise EmptyScenario(f"{path} is empty: a scenario is a YAML mapping (docs/contracts.md section 5)")
    return Scenario.model_validate(data)


class EmptyScenario(ValueError):
    """A scenario file with nothing (or only comments) in it."""


def resolve_data_path(path: str) -> Path:
    """A trace file: as given, else relative to the repository root."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.is_file():
        return candidate
    from_root = REPO_ROOT / path
    if from_root.is_file():
        return from_root
    raise FileNotFoundError(f"trace file {path!r} not found (tried the working directory and {REPO_ROOT})")

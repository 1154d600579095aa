"""Scenario files for `queue-scaler simulate` (CONTRACTS.md section 5), as validated models.

A scenario names the workload (arrivals and service times per queue), the fleet (boot time, slots
per instance, size bounds) and the pool configuration every autoscaler gets. Errors name the field
by its dotted path, as `queue-scaler decide` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from queue_scaler.config import NAME_PATTERN, PoolConfig, QueueConfig

#: Built-in scenarios ship next to this module; `simulate NAME` finds them by name.
BUILTIN_DIR = Path(__file__).parent / "scenarios"
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


class Arrivals(_Model):
    """Exactly one arrival process."""

    burst: Burst | None = None
    poisson: Poisson | None = None
    trace: Trace | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Arrivals:
        given = [k for k in ("burst", "poisson", "trace") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of burst, poisson, trace (got {given or 'none'})")
        return self


class LogNormal(_Model):
    """A log-normal service time given by its median and 90th percentile."""

    median: Annotated[float, Field(gt=0)]
    p90: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _ordered(self) -> LogNormal:
        if self.p90 < self.median:
            raise ValueError(f"p90 ({self.p90}) is below median ({self.median})")
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
    queues: Annotated[list[QueueSpec], Field(min_length=1)]

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
    pools: Annotated[list[PoolSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _valid_pools(self) -> Scenario:
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pools: duplicate pool names {sorted(n for n in names if names.count(n) > 1)}")
        for index, pool in enumerate(self.pools):
            if pool.max_size < pool.min_size:
                raise ValueError(f"pools.{index}.max_size: {pool.max_size} is below min_size {pool.min_size}")
            try:
                pool.pool_config()
            except ValueError as error:
                raise ValueError(f"pools.{index}: not a valid pool configuration: {error}") from None
        return self


def builtin_names() -> list[str]:
    """The built-in suite, in the order `bench` runs it."""
    order = (BUILTIN_DIR / "SUITE").read_text(encoding="utf-8").split()
    return [name for name in order if (BUILTIN_DIR / f"{name}.yaml").is_file()]


def scenario_path(name_or_path: str) -> Path:
    """A file path as given, or the built-in scenario of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    raise FileNotFoundError(
        f"no scenario file {name_or_path!r} and no built-in of that name (built-ins: {', '.join(builtin_names())})"
    )


def load_scenario(name_or_path: str) -> Scenario:
    """Read and validate a scenario file (raises pydantic.ValidationError naming the field)."""
    text = scenario_path(name_or_path).read_text(encoding="utf-8")
    return Scenario.model_validate(yaml.safe_load(text))


def resolve_data_path(path: str) -> Path:
    """A trace file: as given, else relative to the repository root."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.is_file():
        return candidate
    from_root = REPO_ROOT / path
    if from_root.is_file():
        return from_root
    raise FileNotFoundError(f"trace file {path!r} not found (tried the working directory and {REPO_ROOT})")

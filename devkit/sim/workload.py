"""Job arrivals and service times of a scenario, drawn once and shared by every policy.

Each queue's arrival process draws from its own seeded generator, so the same scenario and seed
give the same jobs whatever the policy, and adding a queue leaves the other queues' jobs unchanged.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from devkit.sim.scenario import DAY, Arrivals, Daily, QueueSpec, Scenario, Service, Trace, resolve_data_path

# z-score of the 90th percentile of the standard normal: turns (median, p90) into sigma.
_Z90 = 1.2815515655446004


@dataclass(frozen=True)
class Workload:
    """Every job of a run, sorted by arrival: parallel lists indexed by job id."""

    arrival: list[float]
    service: list[float]
    pool: list[int]
    queue: list[int]

    def __len__(self) -> int:
        return len(self.arrival)


def build_workload(scenario: Scenario) -> Workload:
    """Draw the scenario's jobs: arrivals in `[0, duration_seconds)` with their service times."""
    jobs: list[tuple[float, int, int, float]] = []
    for p, pool in enumerate(scenario.pools):
        for q, queue in enumerate(pool.queues):
            for k, spec in enumerate(queue.arrival_specs()):
                rng = random.Random(f"{scenario.seed}:{pool.name}:{queue.name}:{k}")
                from_trace = queue.service_seconds.from_trace
                unit_column = from_trace.column if from_trace is not None else None
                for at, unit in _arrivals(spec, scenario.duration_seconds, rng, unit_column):
                    jobs.append((at, p, q, _service(queue, queue.service_seconds, unit, rng)))
    jobs.sort()
    return Workload(
        arrival=[j[0] for j in jobs],
        service=[j[3] for j in jobs],
        pool=[j[1] for j in jobs],
        queue=[j[2] for j in jobs],
    )


def _service(queue: QueueSpec, service: Service, unit: float | None, rng: random.Random) -> float:
    if service.fixed is not None:
        return service.fixed
    if service.lognormal is not None:
        sigma = math.log(service.lognormal.p90 / service.lognormal.median) / _Z90
        drawn = rng.lognormvariate(math.log(service.lognormal.median), sigma)
        cap = service.lognormal.max
        return drawn if cap is None else min(drawn, cap)
    assert service.from_trace is not None, f"queue {queue.name}: validated to have one service spec"
    assert unit is not None, f"queue {queue.name}: from_trace needs a timestamps trace (validated)"
    return max(0.001, service.from_trace.base + service.from_trace.per_unit * unit)


def _arrivals(
    spec: Arrivals, duration: float, rng: random.Random, unit_column: str | None
) -> Iterator[tuple[float, float | None]]:
    """(arrival time, the trace row's `unit_column` if any) in `[0, duration)`."""
    if spec.burst is not None:
        burst = spec.burst
        times = sorted(burst.at + rng.random() * burst.over_seconds for _ in range(burst.count))
        yield from ((t, None) for t in times if t < duration)
    elif spec.poisson is not None:
        poisson = spec.poisson
        end = min(duration, poisson.end if poisson.end is not None else duration)
        t = poisson.start + rng.expovariate(poisson.per_second)
        while t < end:
            yield t, None
            t += rng.expovariate(poisson.per_second)
    elif spec.daily is not None:
        yield from _daily_arrivals(spec.daily, duration, rng)
    else:
        assert spec.trace is not None, "validated to have one arrival spec"
        yield from _trace_arrivals(spec.trace, duration, rng, unit_column)


def _daily_arrivals(daily: Daily, duration: float, rng: random.Random) -> Iterator[tuple[float, float | None]]:
    """Each day's pattern, shifted and scaled by that day's draws (scenario.Daily), within `[0, duration)`."""
    for k in range(daily.days):
        shift = rng.uniform(-daily.jitter_seconds, daily.jitter_seconds) if daily.jitter_seconds else 0.0
        factor = rng.lognormvariate(0.0, daily.volume_sigma) if daily.volume_sigma else 1.0
        start = k * DAY + daily.offset_seconds + shift
        for t, _ in _arrivals(_scaled_spec(daily.day, factor), daily.length_seconds, rng, None):
            at = start + t
            if 0 <= at < duration:
                yield at, None


def _scaled_spec(spec: Arrivals, factor: float) -> Arrivals:
    """`spec` with its volume multiplied by `factor`: a burst's count, a Poisson rate, a trace's scale."""
    if factor == 1.0:
        return spec
    if spec.burst is not None:
        return spec.model_copy(
            update={"burst": spec.burst.model_copy(update={"count": max(1, round(spec.burst.count * factor))})}
        )
    if spec.poisson is not None:
        return spec.model_copy(
            update={"poisson": spec.poisson.model_copy(update={"per_second": spec.poisson.per_second * factor})}
        )
    assert spec.trace is not None, "a daily pattern repeats a burst, poisson or trace (validated)"
    return spec.model_copy(update={"trace": spec.trace.model_copy(update={"scale": spec.trace.scale * factor})})


def _scaled(count: int, scale: float, rng: random.Random) -> int:
    """`count * scale` arrivals: binomial thinning below 1, whole copies plus a coin above."""
    if scale <= 1:
        return rng.binomialvariate(count, scale) if count else 0
    expected = count * scale
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def _trace_arrivals(
    trace: Trace, duration: float, rng: random.Random, unit_column: str | None
) -> Iterator[tuple[float, float | None]]:
    if trace.format == "timestamps":
        column = trace.column or "TIMESTAMP"
        for offset, unit in _timestamp_rows(str(resolve_data_path(trace.path)), column, unit_column):
            t = offset - trace.start_seconds
            if 0 <= t < duration:
                for _ in range(_scaled(1, trace.scale, rng)):
                    yield t, unit
        return
    if trace.format == "counts":
        assert trace.column is not None, "validated: counts traces name their column"
        counts = _count_column(str(resolve_data_path(trace.path)), trace.column)
        width = trace.bin_seconds
    else:
        assert trace.durations_path is not None, "validated: azure-functions traces name durations_path"
        counts = _azure_functions_minutes(
            str(resolve_data_path(trace.path)),
            str(resolve_data_path(trace.durations_path)),
            trace.min_average_seconds,
            trace.max_average_seconds,
        )
        width = 60.0
    for index, count in enumerate(counts):
        start = index * width - trace.start_seconds
        if start + width <= 0:
            continue
        if start >= duration:
            break
        times = sorted(start + rng.random() * width for _ in range(_scaled(count, trace.scale, rng)))
        yield from ((t, None) for t in times if 0 <= t < duration)


@lru_cache(maxsize=8)
def _timestamp_rows(path: str, column: str, unit_column: str | None) -> tuple[tuple[float, float | None], ...]:
    rows: list[tuple[float, float | None]] = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        first: float | None = None
        for row in reader:
            t = _epoch(row[column])
            first = t if first is None else first
            unit = float(row[unit_column]) if unit_column else None
            rows.append((t - first, unit))
    rows.sort(key=lambda r: r[0])
    return tuple(rows)


def _epoch(text: str) -> float:
    """Seconds of an ISO-like timestamp; fractions may have more digits than datetime accepts."""
    whole, _, fraction = text.strip().partition(".")
    seconds = datetime.fromisoformat(whole).timestamp()
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


@lru_cache(maxsize=8)
def _count_column(path: str, column: str) -> tuple[int, ...]:
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return tuple(int(float(row[column])) for row in csv.DictReader(handle))


@lru_cache(maxsize=8)
def _azure_functions_minutes(path: str, durations: str, low: float, high: float) -> tuple[int, ...]:
    """Per-minute invocations summed over the functions whose average duration is in `[low, high)`."""
    with Path(durations).open(newline="", encoding="utf-8") as handle:
        average = {row["HashFunction"]: float(row["Average"]) / 1000 for row in csv.DictReader(handle)}
    totals: list[int] = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        first_minute = header.index("minute_1")
        totals = [0] * (len(header) - first_minute)
        for row in reader:
            seconds = average.get(row[0])
            if seconds is None or not low <= seconds < high:
                continue
            for i, value in enumerate(row[first_minute:]):
                if value and value != "0":
                    totals[i] += int(value)
    return tuple(totals)

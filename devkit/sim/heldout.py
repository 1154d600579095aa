"""Draw the held-out scenarios (issue 26): workloads from the public traces the built-ins never used.

`python -m devkit.sim.heldout [--seed N] [--out DIR]` writes one YAML file per kind below and a
SUITE file into DIR (default `devkit/sim/scenarios/heldout`, seed 2626: the committed set). The set
was drawn once, before any tuning, and the recommended setting is never tuned on it
(docs/benchmark.md, "Held-out scenarios"): `make bench` reports it apart from the built-in eight.

What differs from the built-ins, by kind:
- `functions-seconds`: the Azure Functions whose average run is 10-30 s (the built-ins take 30-600 s),
  a 3-hour window; 2 slots per instance.
- `functions-long`: the functions averaging 10-30 minutes, a 6-hour window; 4 slots.
- `llm-conv`: a 30-minute window of the Azure LLM *conversation* trace (the built-in replays the
  code trace), jobs of 1 s + 0.05 s per generated token; 8 slots.
- `chat-and-batch`: one pool serving two queues, highest first: a window of the conversation trace
  and minutes-long functions (90-240 s) from a drawn hour; 8 slots.
- `functions-one-slot`: two 1-slot pools (functions of 90-240 s and 240-600 s) over a 4-hour window,
  with slower boots (90-300 s).

The seed draws each window (which hours of the day, which seconds of the LLM trace); everything else
is derived from the traces by the rules in the comments each file carries: service times are
log-normal, fitted to the invocation-weighted mixture of the chosen functions' duration percentiles
in the window (azure_functions_2019_1000_durations.csv: each function's 0/1/25/50/75/99/100th
percentiles, linear in between), capped at the longest run those functions recorded (their largest
100th percentile: an uncapped fitted tail invents jobs of days that no run took);
`seconds_per_message` is the capped log-normal's mean (the mean job time an operator measures);
max_size is twice the peak 10-minute load in instances (at least 4); fixed_size the window's average
load with 25 % headroom, as the built-ins size theirs.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from devkit.sim.scenario import HELDOUT_DIR, resolve_data_path

SEED = 2626
TRACES = "../shared/traces"
FUNCTIONS = f"{TRACES}/azure_functions_2019_1000_invocations_per_minute.csv"
DURATIONS = f"{TRACES}/azure_functions_2019_1000_durations.csv"
CONV = f"{TRACES}/AzureLLMInferenceTrace_conv.csv"
#: The conversation trace spans 3,503 s (../shared/traces/README.md).
CONV_SPAN = 3503
#: The percentiles azure_functions_2019_1000_durations.csv gives per function.
PERCENTILES = (0, 1, 25, 50, 75, 99, 100)
_Z90 = 1.2815515655446004
ATTRIBUTION = {
    "functions": 'Azure Functions 2019 trace (Shahrad et al., "Serverless in the Wild", USENIX ATC 2020; CC-BY 4.0)',
    "llm": 'Azure LLM inference trace, conversation (Patel et al., "Splitwise", ISCA 2024; CC-BY 4.0)',
}


@dataclass(frozen=True)
class Band:
    """The functions whose average run lies in [low, high) seconds, over minutes [first, first + count)."""

    low: float
    high: float
    first_minute: int
    minutes: int


@lru_cache(maxsize=1)
def _functions() -> tuple[dict[str, tuple[float, tuple[float, ...]]], dict[str, tuple[int, ...]]]:
    """Per function: (average s, duration percentiles s), and its per-minute invocations."""
    with resolve_data_path(DURATIONS).open(newline="", encoding="utf-8") as handle:
        durations = {
            row["HashFunction"]: (
                float(row["Average"]) / 1000,
                tuple(float(row[f"percentile_Average_{p}"]) / 1000 for p in PERCENTILES),
            )
            for row in csv.DictReader(handle)
        }
    invocations: dict[str, tuple[int, ...]] = {}
    with resolve_data_path(FUNCTIONS).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        first = next(reader).index("minute_1")
        for row in reader:
            if row[0] in durations:
                counts = tuple(int(v) if v else 0 for v in row[first:])
                before = invocations.get(row[0])
                # A function hash may appear in more than one row: its minutes add up, as the simulator adds them.
                invocations[row[0]] = counts if before is None else tuple(map(sum, zip(before, counts, strict=True)))
    return durations, invocations


def band_minutes(band: Band) -> list[int]:
    """Invocations per minute of the band's functions in its window."""
    durations, invocations = _functions()
    totals = [0] * band.minutes
    for name, counts in invocations.items():
        if band.low <= durations[name][0] < band.high:
            for i, value in enumerate(counts[band.first_minute : band.first_minute + band.minutes]):
                totals[i] += value
    return totals


def _cdf(points: tuple[float, ...], x: float) -> float:
    """A function's duration CDF at x: linear between its published percentiles."""
    if x <= points[0]:
        return 0.0
    if x >= points[-1]:
        return 1.0
    i = bisect.bisect_right(points, x)
    lo, hi = points[i - 1], points[i]
    p_lo, p_hi = PERCENTILES[i - 1] / 100, PERCENTILES[i] / 100
    return p_hi if hi == lo else p_lo + (p_hi - p_lo) * (x - lo) / (hi - lo)


def band_service(band: Band) -> tuple[float, float, float]:
    """(median, p90, longest run) of the invocation-weighted mixture of the band's duration
    distributions (the longest run: the largest 100th percentile among the functions that ran)."""
    durations, invocations = _functions()
    weighted = [
        (sum(counts[band.first_minute : band.first_minute + band.minutes]), durations[name][1])
        for name, counts in invocations.items()
        if band.low <= durations[name][0] < band.high
    ]
    weighted = [(w, points) for w, points in weighted if w > 0]
    total = sum(w for w, _ in weighted)

    def quantile(q: float) -> float:
        low, high = 0.0, max(points[-1] for _, points in weighted)
        for _ in range(100):
            mid = (low + high) / 2
            if sum(w * _cdf(points, mid) for w, points in weighted) / total < q:
                low = mid
            else:
                high = mid
        return high

    longest = max(points[-1] for _, points in weighted)
    return round(quantile(0.5), 1), round(quantile(0.9), 1), round(longest, 1)


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def lognormal_mean(median: float, p90: float, cap: float) -> float:
    """The mean of min(X, cap) for X log-normal with this median and p90: E[X; X < cap] + cap P(X >= cap)."""
    mu, sigma = math.log(median), math.log(p90 / median) / _Z90
    z = (math.log(cap) - mu) / sigma
    return math.exp(mu + sigma * sigma / 2) * _phi(z - sigma) + cap * (1 - _phi(z))


@lru_cache(maxsize=1)
def _conv_rows() -> tuple[tuple[float, int], ...]:
    """(seconds since the first request, generated tokens) of the conversation trace."""
    from devkit.sim.workload import _timestamp_rows

    rows = _timestamp_rows(str(resolve_data_path(CONV)), "TIMESTAMP", "GeneratedTokens")
    return tuple((t, int(unit or 0)) for t, unit in rows)


def conv_window(start: float, seconds: float, scale: float, base: float, per_token: float) -> tuple[list[float], float]:
    """Per-minute expected arrivals and the mean job (s) of a window of the conversation trace."""
    rows = [(t - start, tokens) for t, tokens in _conv_rows() if start <= t < start + seconds]
    minutes = [0.0] * math.ceil(seconds / 60)
    for t, _ in rows:
        minutes[int(t // 60)] += scale
    mean = sum(base + per_token * tokens for _, tokens in rows) / len(rows)
    return minutes, mean


def sizes(per_minute: list[float], mean_seconds: float, slots: int) -> tuple[int, int]:
    """(max_size, fixed_size): twice the peak 10-minute load in instances (at least 4), and the
    window's average load with 25 % headroom."""
    tens = [sum(per_minute[i : i + 10]) / 600 for i in range(0, len(per_minute), 10)]
    peak = max(tens) * mean_seconds / slots
    average = sum(per_minute) / (60 * len(per_minute)) * mean_seconds / slots
    return max(4, math.ceil(2 * peak)), max(1, math.ceil(1.25 * average))


def _functions_queue(name: str, band: Band, scale: float, wait: float) -> tuple[dict[str, Any], list[float], float]:
    median, p90, longest = band_service(band)
    queue = {
        "name": name,
        "max_wait_seconds": wait,
        "arrivals": {
            "trace": {
                "path": FUNCTIONS,
                "format": "azure-functions",
                "durations_path": DURATIONS,
                "min_average_seconds": band.low,
                "max_average_seconds": band.high,
                "scale": scale,
                "start_seconds": band.first_minute * 60,
            }
        },
        "service_seconds": {"lognormal": {"median": median, "p90": p90, "max": longest}},
    }
    per_minute = [count * scale for count in band_minutes(band)]
    return queue, per_minute, lognormal_mean(median, p90, longest)


def _functions_pool(name: str, band: Band, scale: float, wait: float, slots: int) -> tuple[dict[str, Any], str]:
    queue, per_minute, mean = _functions_queue(f"{name}-jobs", band, scale, wait)
    max_size, fixed = sizes(per_minute, mean, slots)
    pool = {
        "name": name,
        "slots_per_instance": slots,
        "min_size": 0,
        "max_size": max_size,
        "fixed_size": fixed,
        "scaler": {"seconds_per_message": round(mean, 1)},
        "queues": [queue],
    }
    service = queue["service_seconds"]["lognormal"]
    note = (
        f"pool {name}: functions averaging {band.low:g}-{band.high:g} s, minutes {band.first_minute + 1}-"
        f"{band.first_minute + band.minutes} of the day (hours {band.first_minute // 60}-"
        f"{(band.first_minute + band.minutes) // 60}), thinned to {scale:g}; service log-normal median "
        f"{service['median']:g} s, p90 {service['p90']:g} s, capped at the longest run {service['max']:g} s "
        f"(mean {mean:.1f} s); {round(sum(per_minute)):,} jobs expected"
    )
    return pool, note


def _hours(rng: random.Random, hours: int) -> int:
    """A window of `hours` whole hours within the day: its first minute."""
    return rng.randrange(0, 24 - hours + 1) * 60


def functions_seconds(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    band = Band(10, 30, _hours(rng, 3), 180)
    pool, note = _functions_pool("quick", band, 0.01, 30, 2)
    return {"duration_seconds": 3 * 3600, "pools": [pool]}, [note]


def functions_long(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    band = Band(600, 1800, _hours(rng, 6), 360)
    pool, note = _functions_pool("batch", band, 0.05, 600, 4)
    return {"duration_seconds": 6 * 3600, "pools": [pool]}, [note]


def _conv_queue(
    name: str, start: float, seconds: float, scale: float, wait: float
) -> tuple[dict[str, Any], list[float], float, str]:
    base, per_token = 1.0, 0.05
    per_minute, mean = conv_window(start, seconds, scale, base, per_token)
    queue = {
        "name": name,
        "max_wait_seconds": wait,
        "arrivals": {
            "trace": {
                "path": CONV,
                "format": "timestamps",
                "column": "TIMESTAMP",
                "scale": scale,
                "start_seconds": start,
            }
        },
        "service_seconds": {"from_trace": {"column": "GeneratedTokens", "base": base, "per_unit": per_token}},
    }
    note = (
        f"queue {name}: conversation trace seconds {start:g}-{start + seconds:g} after its first request, "
        f"thinned to {scale:g}; each job {base:g} s + {per_token:g} s per generated token (mean {mean:.1f} s); "
        f"{round(sum(per_minute)):,} jobs expected"
    )
    return queue, per_minute, mean, note


def llm_conv(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    seconds = 1800.0
    start = float(round(rng.uniform(0, CONV_SPAN - seconds)))
    queue, per_minute, mean, note = _conv_queue("chat-requests", start, seconds, 0.5, 10)
    max_size, fixed = sizes(per_minute, mean, 8)
    pool = {
        "name": "chat",
        "slots_per_instance": 8,
        "min_size": 0,
        "max_size": max_size,
        "fixed_size": fixed,
        "scaler": {"seconds_per_message": round(mean, 1)},
        "queues": [queue],
    }
    return {"duration_seconds": seconds, "pools": [pool]}, [note]


def chat_and_batch(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    seconds = 1800.0
    start = float(round(rng.uniform(0, CONV_SPAN - seconds)))
    chat, chat_minutes, chat_mean, chat_note = _conv_queue("mixed-chat", start, seconds, 0.25, 15)
    band = Band(90, 240, rng.randrange(0, 24 * 60 - 30), 30)
    batch, batch_minutes, batch_mean = _functions_queue("mixed-batch", band, 0.02, 300)
    chat_jobs, batch_jobs = sum(chat_minutes), sum(batch_minutes)
    # One pool, one mean job time: the jobs' mean over both queues, as an operator would measure it.
    mean = (chat_jobs * chat_mean + batch_jobs * batch_mean) / (chat_jobs + batch_jobs)
    per_minute = [a + b for a, b in zip(chat_minutes, batch_minutes, strict=True)]
    max_size, fixed = sizes(per_minute, mean, 8)
    pool = {
        "name": "mixed",
        "slots_per_instance": 8,
        "min_size": 0,
        "max_size": max_size,
        "fixed_size": fixed,
        "scaler": {"seconds_per_message": round(mean, 1)},
        "queues": [chat, batch],
    }
    service = batch["service_seconds"]["lognormal"]
    batch_note = (
        f"queue mixed-batch: functions averaging 90-240 s, minutes {band.first_minute + 1}-"
        f"{band.first_minute + band.minutes} of the day, thinned to 0.02; service log-normal median "
        f"{service['median']:g} s, p90 {service['p90']:g} s, capped at {service['max']:g} s (mean {batch_mean:.1f} s); "
        f"{round(batch_jobs):,} jobs expected"
    )
    return {"duration_seconds": seconds, "pools": [pool]}, [chat_note, batch_note, f"pool mean job {mean:.1f} s"]


def functions_one_slot(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    first = _hours(rng, 4)
    medium, medium_note = _functions_pool("single-medium", Band(90, 240, first, 240), 0.01, 300, 1)
    long, long_note = _functions_pool("single-long", Band(240, 600, first, 240), 0.01, 600, 1)
    return {
        "duration_seconds": 4 * 3600,
        "boot_seconds": {"min": 90, "max": 300},
        "pools": [medium, long],
    }, [medium_note, long_note]


Kind = Callable[[random.Random], tuple[dict[str, Any], list[str]]]
#: Each kind, by the name its scenario gets (`heldout-<kind>`), with what it says and its trace.
KINDS: dict[str, tuple[Kind, str, str]] = {
    "functions-seconds": (functions_seconds, "Azure Functions of 10-30 s on 2-slot instances, 3 hours", "functions"),
    "functions-long": (functions_long, "Azure Functions of 10-30 minutes on 4-slot instances, 6 hours", "functions"),
    "llm-conv": (llm_conv, "30 minutes of the Azure LLM conversation trace, 8 slots per instance", "llm"),
    "chat-and-batch": (chat_and_batch, "one 8-slot pool: LLM chats first, minutes-long functions after", "both"),
    "functions-one-slot": (functions_one_slot, "two 1-slot pools of minutes-long functions, slow boots", "functions"),
}


def draw(kind: str, seed: int) -> str:
    """The scenario file of `kind` drawn with `seed`: a comment saying how, then the YAML."""
    build, description, trace = KINDS[kind]
    rng = random.Random(f"{seed}:{kind}")
    body, notes = build(rng)
    name = f"heldout-{kind}"
    scenario = {
        "name": name,
        "description": description,
        "duration_seconds": body["duration_seconds"],
        "seed": seed,
        "boot_seconds": body.get("boot_seconds", {"min": 60, "max": 180}),
        "pools": body["pools"],
    }
    sources = [ATTRIBUTION[t] for t in (("functions", "llm") if trace == "both" else (trace,))]
    header = [
        f"Held-out scenario (issue 26), never tuned on: {description}.",
        f"Drawn by `python -m devkit.sim.heldout --seed {seed}` (kind {kind}: windows from "
        f"random.Random('{seed}:{kind}')).",
        *(f"Source: {s}; ../shared/traces/README.md." for s in sources),
        *notes,
        "Sizes (devkit/sim/heldout.py): max_size twice the peak 10-minute load, fixed_size the average load + 25 %;",
        "targets from each queue's wait objective (slots * max_wait_seconds / seconds_per_message).",
    ]
    comment = "\n".join(f"# {line}" for line in header)
    return f"{comment}\n{yaml.safe_dump(scenario, sort_keys=False, width=110)}"


def write(out: Path, seed: int) -> list[Path]:
    """Every kind's file and the SUITE (the order `bench` runs them) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = out / f"heldout-{kind}.yaml"
        path.write_text(draw(kind, seed), encoding="utf-8")
        written.append(path)
    (out / "SUITE").write_text("".join(f"heldout-{kind}\n" for kind in KINDS), encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.sim.heldout", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED, help=f"draws the windows (default {SEED}, the committed set)")
    parser.add_argument("--out", type=Path, default=HELDOUT_DIR, help=f"where the files go (default {HELDOUT_DIR})")
    args = parser.parse_args(argv)
    for path in write(args.out, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

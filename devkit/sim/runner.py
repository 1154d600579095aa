"""Run one scenario under one policy: workload, simulation, metrics.

A policy with variants (registry.Policy.variants: documented alternative configurations) is run
once per variant and counts as the one its chooser picks; that run's metrics name it (`variant`)
and keep every variant's wait p95 and instance-seconds (`variants`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from devkit.sim.engine import ControllerFactory, SeriesPoint, Simulation
from devkit.sim.metrics import summarize
from devkit.sim.policies import controller_factory
from devkit.sim.policies.registry import Builder, get
from devkit.sim.scenario import Scenario
from devkit.sim.workload import Workload, build_workload


@dataclass(frozen=True)
class RunResult:
    scenario: str
    policy: str
    metrics: dict[str, Any]
    series: list[SeriesPoint]
    wall_seconds: float


def simulate(
    scenario: Scenario,
    policy: str,
    workload: Workload | None = None,
    record_series: bool = True,
    build: Builder | None = None,
) -> RunResult:
    """Simulate `scenario` under `policy` (built by `build`, one of its sweep's settings, when given);
    the same scenario, policy and seed give the same metrics."""
    jobs = workload if workload is not None else build_workload(scenario)
    began = time.perf_counter()
    chosen = get(policy)
    if build is not None or not chosen.variants or chosen.choose is None:
        factory = build(scenario, jobs) if build is not None else controller_factory(policy, scenario, jobs)
        metrics, series = _run(scenario, jobs, factory, record_series)
        return RunResult(scenario.name, policy, metrics, series, time.perf_counter() - began)
    runs = {name: _run(scenario, jobs, make(scenario, jobs), record_series) for name, make in chosen.variants.items()}
    variant = chosen.choose({name: metrics for name, (metrics, _) in runs.items()})
    metrics, series = runs[variant]
    metrics = metrics | {
        "variant": variant,
        "variants": {
            name: {"wait_p95": m["wait_p95"], "instance_seconds": m["instance_seconds"]}
            for name, (m, _) in runs.items()
        },
    }
    return RunResult(scenario.name, policy, metrics, series, time.perf_counter() - began)


def _run(
    scenario: Scenario, jobs: Workload, factory: ControllerFactory, record_series: bool
) -> tuple[dict[str, Any], list[SeriesPoint]]:
    sim = Simulation(scenario, jobs, factory, record_series).run()
    return summarize(sim), sim.series

"""Run one scenario under one policy: workload, simulation, metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from devkit.sim.engine import SeriesPoint, Simulation
from devkit.sim.metrics import summarize
from devkit.sim.policies import controller_factory
from devkit.sim.policies.registry import Builder
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
    factory = build(scenario, jobs) if build is not None else controller_factory(policy, scenario, jobs)
    sim = Simulation(scenario, jobs, factory, record_series).run()
    metrics = summarize(sim)
    return RunResult(scenario.name, policy, metrics, sim.series, time.perf_counter() - began)

"""KEDA's cron scaler (keda.sh/docs/latest/scalers/cron) for a pool with known busy times: the peer gets
the same schedules queue-scaler's `schedule` signal is given, as cron triggers."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sim.engine import PoolSim, Simulation
from devkit.sim.policies import controller_factory
from devkit.sim.policies import keda as keda_model
from devkit.sim.scenario import Scenario
from devkit.sim.workload import build_workload

#: The simulator's clock reads as Unix time: the schedule fires at 01:00 UTC, 3,600 s into the run.
FIRE, WINDOW, MINIMUM, BURST_AT = 3600.0, 1800.0, 5, 3900.0
SCHEDULE = {"name": "nightly", "cron": "0 1 * * *", "time_zone": "UTC", "minimum": MINIMUM, "window_seconds": WINDOW}


def scenario(schedules: list[dict[str, Any]] | None) -> Scenario:
    scaler: dict[str, Any] = {"seconds_per_message": 60}
    if schedules is not None:
        scaler["signals"] = {"backlog": {}, "schedule": {"schedules": schedules}}
    return Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": 7200,
            "seed": 3,
            "boot_seconds": {"min": 60, "max": 120},
            "fleet": {"launch_failure_rate": 0, "slow_boots": {"fraction": 0}},
            "pools": [
                {
                    "name": "batch",
                    "min_size": 0,
                    "max_size": 10,
                    "drain_seconds": 60,
                    "scaler": scaler,
                    "queues": [
                        {
                            "name": "q",
                            "target_per_instance": 1,
                            "arrivals": {"burst": {"at": BURST_AT, "count": 20}},
                            "service_seconds": {"fixed": 60},
                        }
                    ],
                }
            ],
        }
    )


def keda(s: Scenario) -> keda_model.Keda:
    return keda_model.Keda(PoolSim(0, s.pools[0], s, [60.0]), keda_model.PodTermination.default(60))


@pytest.mark.parametrize(
    ("schedules", "triggers"),
    [(None, []), ([SCHEDULE], [MINIMUM]), ([SCHEDULE, SCHEDULE | {"name": "b", "minimum": 2}], [MINIMUM, 2])],
    ids=["none", "one", "two"],
)
def test_each_schedule_is_a_cron_trigger_with_its_minimum_as_desired_replicas(
    schedules: list[dict[str, Any]] | None, triggers: list[int]
) -> None:
    assert [c.minimum for c in keda(scenario(schedules)).crons] == triggers


@pytest.mark.parametrize(
    ("now", "value"),
    [(FIRE - 1, 1), (FIRE, MINIMUM), (FIRE + WINDOW - 1, MINIMUM), (FIRE + WINDOW, 1), (FIRE + 86400, MINIMUM)],
    ids=["before", "at-start", "before-end", "at-end", "next-day"],
)
def test_the_cron_metric_is_desired_replicas_in_the_window_and_1_outside(now: float, value: int) -> None:
    (cron,) = keda(scenario([SCHEDULE])).crons
    assert keda_model.cron_value(cron, now) == value


@pytest.mark.parametrize(
    ("messages", "crons", "current", "expected"),
    [([0], (MINIMUM,), 1, MINIMUM), ([0], (1,), 1, 1), ([8], (MINIMUM,), 1, 8), ([2], (MINIMUM,), 5, MINIMUM)],
    ids=["cron-wins", "outside-window", "queue-wins", "held-at-desired"],
)
def test_the_hpa_takes_the_largest_of_the_sqs_and_cron_triggers(
    messages: list[int], crons: tuple[int, ...], current: int, expected: int
) -> None:
    model = keda(scenario([SCHEDULE]))
    model.replicas = current
    assert model.hpa_recommendation(messages, crons) == expected


@pytest.mark.parametrize(("schedules", "nodes"), [(None, 0), ([SCHEDULE], MINIMUM)], ids=["sqs-only", "with-cron"])
def test_the_cron_trigger_scales_the_nodes_out_before_the_burst(
    schedules: list[dict[str, Any]] | None, nodes: int
) -> None:
    s = scenario(schedules)
    sim = Simulation(s, build_workload(s), controller_factory("keda", s, build_workload(s))).run()
    # Nodes asked for inside the window, before any message arrived: the poll (30 s), the HPA (15 s
    # per step) and the Cluster Autoscaler (10 s) all run within 3 minutes of the fire.
    early = sum(change for at, change in sim.pools[0].actions if FIRE <= at < BURST_AT and change > 0)
    assert early == nodes

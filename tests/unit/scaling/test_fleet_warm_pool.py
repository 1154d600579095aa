"""Warm-pool instances are counted apart from those serving and booting, and named in the explanation."""

from __future__ import annotations

import pytest

from queue_scaler.scaling.domain.decision import decide_pool, warm_pool_line
from queue_scaler.scaling.domain.fleet import GroupState, InstanceState, WarmPool, fleet_observation
from queue_scaler.scaling.domain.models import FleetObservation, History, Observation, QueueObservation
from queue_scaler.scaling.domain.pool import PoolConfig

POOL = PoolConfig.model_validate(
    {"name": "video", "max_size": 20, "queues": [{"name": "jobs", "url": "u", "target_per_instance": 10}]}
)


def states(*lifecycle: str) -> list[InstanceState]:
    return [InstanceState(instance_id=f"i-{n:017x}", lifecycle_state=s) for n, s in enumerate(lifecycle)]


@pytest.mark.parametrize(
    ("pool", "warmed", "warming"),
    [
        pytest.param(WarmPool(state="Stopped"), 0, 0, id="an empty pool"),
        pytest.param(
            WarmPool(state="Stopped", instances=states("Warmed:Stopped", "Warmed:Stopped")), 2, 0, id="stopped"
        ),
        pytest.param(
            WarmPool(state="Running", instances=states("Warmed:Running", "Warmed:Pending")), 1, 1, id="running"
        ),
        pytest.param(WarmPool(state="Hibernated", instances=states("Warmed:Hibernated")), 1, 0, id="hibernated"),
        pytest.param(
            WarmPool(state="Stopped", instances=states("Warmed:Pending:Wait", "Warmed:Pending:Proceed")),
            0,
            2,
            id="launching into the pool, held at its hook or past it",
        ),
        pytest.param(
            WarmPool(state="Stopped", instances=states("Warmed:Terminating", "Warmed:Terminating:Wait")),
            0,
            0,
            id="terminating from the pool: neither",
        ),
    ],
)
def test_given_a_warm_pool_when_observed_then_ready_and_preparing_instances_are_counted_apart(
    pool: WarmPool, warmed: int, warming: int
) -> None:
    group = GroupState(desired=2, instances=states("InService", "Pending:Wait"), warm_pool=pool)
    fleet = fleet_observation(group, frozenset())
    assert (fleet.warmed, fleet.warming, fleet.warm_pool) == (warmed, warming, pool.state)
    assert (fleet.in_service, fleet.pending) == (1, 1)  # unchanged by the pool


def test_given_no_warm_pool_when_observed_then_the_fleet_is_as_before() -> None:
    group = GroupState(desired=2, instances=states("InService", "Pending"))
    assert fleet_observation(group, frozenset()) == FleetObservation(desired=2, in_service=1, pending=1)


@pytest.mark.parametrize(
    ("fleet", "line"),
    [
        (
            FleetObservation(desired=1, warm_pool="Stopped", warmed=3),
            "warm pool: 3 stopped (outside desired; a scale-out starts them first)",
        ),
        (
            FleetObservation(desired=1, warm_pool="Running", warmed=1, warming=2),
            "warm pool: 1 running, 2 warming (outside desired; a scale-out starts them first)",
        ),
    ],
)
def test_given_a_warm_pool_when_explained_then_its_line_names_its_instances(fleet: FleetObservation, line: str) -> None:
    assert warm_pool_line(fleet) == line


@pytest.mark.parametrize("warmed", [0, 5])
def test_given_a_warm_pool_when_decided_then_the_decision_is_the_same_and_explained(warmed: int) -> None:
    queues = [QueueObservation(name="jobs", visible=40)]
    cold = decide_pool(
        1000.0, POOL, Observation(queues=queues, fleet=FleetObservation(desired=1, in_service=1)), History()
    )
    warm_fleet = FleetObservation(desired=1, in_service=1, warm_pool="Stopped", warmed=warmed)
    warm = decide_pool(1000.0, POOL, Observation(queues=queues, fleet=warm_fleet), History())
    assert warm.desired == cold.desired  # a warmed instance is started by a scale-out, not counted as serving
    assert warm.explanation == [*cold.explanation[:-1], warm_pool_line(warm_fleet), cold.explanation[-1]]

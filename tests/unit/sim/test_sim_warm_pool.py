"""The simulated warm pool pinned to how AWS runs one: its size, warm starts before cold launches,
reuse on scale-in, the storage-only billing of stopped instances, and what our scaler sees of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devkit.cli import main
from devkit.sim import billing
from devkit.sim.bench import run_warm, with_warm_pools
from devkit.sim.doc import BEGIN
from devkit.sim.engine import Controller, PoolSim, Simulation
from devkit.sim.metrics import summarize
from devkit.sim.policies import DYNAMIC_PEERS, OURS, controller_factory
from devkit.sim.policies.queue_scaler import QueueScaler
from devkit.sim.scenario import REPO_ROOT, Scenario, WarmPoolSpec, WarmState, load_scenario
from devkit.sim.workload import build_workload

#: The documented figures the billing rests on (devkit/sim/billing.py): the template's 30 GB gp3 root
#: volume at $0.08 per GB-month of 730 h, against c7g.medium's and c7g.large's On-Demand price.
STORAGE_PER_HOUR = 30 * 0.08 / 730
C7G_MEDIUM, C7G_LARGE = 0.0363, 0.0725
COLD_MIN = 60.0  # the scenario's shortest cold boot


def scenario(
    *,
    pool: str = "messaging",
    warm: dict[str, Any] | None = None,
    fleet: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Scenario:
    spec: dict[str, Any] = {
        "name": pool,
        "min_size": 0,
        "max_size": 10,
        "queues": [
            {
                "name": "q",
                "target_per_instance": 1,
                "arrivals": {"burst": {"at": 0, "count": 1}},
                "service_seconds": {"fixed": 1000},
            }
        ],
    } | (extra or {})
    if warm is not None:
        spec["warm_pool"] = warm
    return Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": 600,
            "seed": 5,
            "boot_seconds": {"min": COLD_MIN, "max": 120},
            "fleet": {"launch_failure_rate": 0, "slow_boots": {"fraction": 0}} | (fleet or {}),
            "pools": [spec],
        }
    )


class Schedule(Controller):
    """Starts at `initial` and sets each (time, desired) of `steps` when due."""

    def __init__(self, pool: PoolSim, initial: int, steps: list[tuple[float, int]]) -> None:
        super().__init__(pool)
        self.initial, self.steps = initial, steps
        self.loops = [(1.0, 0.0)]

    def initial_size(self) -> int:
        return self.initial

    def rest_size(self) -> int:
        return self.steps[-1][1]

    def on_loop(self, index: int, now: float) -> int | None:
        due = [desired for at, desired in self.steps if at <= now]
        return due[-1] if due else None


def run(s: Scenario, initial: int, steps: list[tuple[float, int]]) -> Simulation:
    return Simulation(s, build_workload(s), lambda pool: Schedule(pool, initial, steps)).run()


@pytest.mark.parametrize(
    ("warm", "desired", "expected"),
    [
        (None, 4, 0),
        ({}, 0, 10),  # AWS's default: max_size - desired
        ({}, 4, 6),
        ({"max_prepared_capacity": 5}, 4, 1),
        ({"max_prepared_capacity": 5}, 7, 0),  # desired above the prepared capacity: empty
        ({"max_prepared_capacity": 5, "min_size": 2}, 7, 2),  # unless MinSize
    ],
    ids=["none", "default-at-0", "default", "prepared", "prepared-exceeded", "min-size"],
)
def test_the_warm_pool_holds_what_aws_keeps(warm: dict[str, Any] | None, desired: int, expected: int) -> None:
    s = scenario(warm=warm)
    pool = PoolSim(0, s.pools[0], s, [1000.0])
    pool.desired = desired
    assert pool.warm_size() == expected


@pytest.mark.parametrize(
    ("warm", "fleet", "scale_to", "warm_ready", "cold"),
    [
        (None, {}, 5, [], 5),
        ({"max_prepared_capacity": 3}, {}, 5, [136.0] * 3, 2),  # 36 s, AWS's measured warm start
        ({"max_prepared_capacity": 3, "state": "Running"}, {"warm_start_seconds": 10}, 2, [110.0] * 2, 0),
        ({"max_prepared_capacity": 3, "min_size": 5}, {}, 5, [136.0] * 5, 0),
        ({"state": "Hibernated"}, {"warm_start_seconds": 20}, 5, [120.0] * 5, 0),  # default size: 10 warmed
    ],
    ids=["cold", "warm-first-then-cold", "running", "min-size", "default-size"],
)
def test_a_scale_out_starts_warmed_instances_first_and_boots_the_rest_cold(
    warm: dict[str, Any] | None, fleet: dict[str, Any], scale_to: int, warm_ready: list[float], cold: int
) -> None:
    sim = run(scenario(warm=warm, fleet=fleet), 0, [(0, 0), (100, scale_to)])
    (pool,) = sim.pools
    ready = sorted(i.ready_at for i in pool.in_service.values())
    assert len(ready) == scale_to
    assert ready[: len(warm_ready)] == warm_ready
    assert all(at >= 100 + COLD_MIN for at in ready[len(warm_ready) :]), "the rest boot cold"
    assert summarize(sim)["warm_starts"] == len(warm_ready) == scale_to - cold


def test_the_warm_pool_refills_with_cold_preparations() -> None:
    # Prepared capacity 3: after 2 of 3 warmed instances start, the pool holds 1 and prepares nothing;
    # back at 0 it prepares 2 more (a cold boot each, billed in full while it runs).
    sim = run(scenario(warm={"max_prepared_capacity": 3}), 0, [(0, 0), (100, 2), (200, 0)])
    (pool,) = sim.pools
    assert len(pool.warmed) == 3 and not pool.warming
    prepared = [i for i in pool.instances if i.launched >= 200 and i.state == "warmed"]
    assert len(prepared) == 2
    assert all(i.stopped_since is not None and i.stopped_since >= 200 + COLD_MIN for i in prepared)


@pytest.mark.parametrize(("reuse", "launches"), [(True, 1), (False, 2)], ids=["reused", "terminated"])
def test_reuse_on_scale_in_returns_the_instance_to_the_warm_pool(reuse: bool, launches: int) -> None:
    # One instance in service, prepared capacity 1: at desired 0 the pool wants one warmed instance.
    s = scenario(
        warm={"max_prepared_capacity": 1, "reuse_on_scale_in": reuse},
        extra={
            "queues": [
                {
                    "name": "q",
                    "target_per_instance": 1,
                    "arrivals": {"burst": {"at": 0, "count": 1}},
                    "service_seconds": {"fixed": 1},
                }
            ]
        },
    )
    sim = run(s, 1, [(0, 1), (100, 0)])
    (pool,) = sim.pools
    assert len(pool.instances) == launches
    assert [i.id for i in pool.warmed.values()] == ([0] if reuse else [1])
    assert (pool.instances[0].state == "terminated") is not reuse


#: (warm pool state, pool name, instance_type) -> (running, stopped, storage) seconds over a 600 s run in
#: which 2 warmed instances wait and nothing scales out.
BILLING = [
    pytest.param((None, "messaging", None), (0.0, 0.0, 0.0), id="no-warm-pool"),
    pytest.param(("Stopped", "messaging", None), (0.0, 1200.0, 1200 * STORAGE_PER_HOUR / C7G_MEDIUM), id="stopped"),
    pytest.param(("Hibernated", "video", None), (0.0, 1200.0, 1200 * STORAGE_PER_HOUR / C7G_LARGE), id="hibernated"),
    pytest.param(("Running", "video", None), (1200.0, 0.0, 0.0), id="running-in-full"),
    pytest.param(("Stopped", "batch", None), (0.0, 1200.0, 1200 * STORAGE_PER_HOUR / C7G_LARGE), id="other-pool"),
    pytest.param(("Stopped", "batch", "c7g.medium"), (0.0, 1200.0, 1200 * STORAGE_PER_HOUR / C7G_MEDIUM), id="typed"),
]


@pytest.mark.parametrize(("given", "billed"), BILLING)
def test_stopped_warm_instances_are_billed_for_their_storage_only(
    given: tuple[str | None, str, str | None], billed: tuple[float, float, float]
) -> None:
    state, name, instance_type = given
    running, stopped, storage = billed
    warm = None if state is None else {"state": state, "max_prepared_capacity": 2}
    extra: dict[str, Any] = {"drain_seconds": 60} if name == "batch" else {}
    if instance_type is not None:
        extra["instance_type"] = instance_type
    s = scenario(pool=name, warm=warm, extra=extra).model_copy(update={"drain_limit_seconds": 0})
    metrics = summarize(run(s, 0, [(0, 0)]))
    assert metrics["running_seconds"] == running
    assert metrics["stopped_seconds"] == stopped
    assert metrics["storage_instance_seconds"] == pytest.approx(storage, abs=1e-3)
    assert metrics["instance_seconds"] == pytest.approx(running + storage, abs=1e-3), "the cost includes storage"


def test_a_warm_start_ends_the_storage_only_billing() -> None:
    # One instance waits stopped from 0, starts at 100 and serves the job until the run ends.
    sim = run(scenario(warm={"max_prepared_capacity": 1}), 0, [(0, 0), (100, 1)])
    metrics = summarize(sim)
    assert metrics["stopped_seconds"] == 100.0
    assert metrics["running_seconds"] == pytest.approx(sim.finished_at - 100.0)


def test_an_unpriced_instance_type_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"instance_type: no On-Demand price for instance type 'x1\.huge'"):
        scenario(extra={"instance_type": "x1.huge"})


def test_the_warm_pool_spec_takes_the_templates_states_only() -> None:
    with pytest.raises(ValueError, match="state"):
        WarmPoolSpec.model_validate({"state": "off"})


@pytest.mark.parametrize(
    ("warm", "line"),
    [
        ({"state": "Stopped"}, "warm pool: 10 stopped (outside desired; a scale-out starts them first)"),
        ({"state": "Running", "max_prepared_capacity": 4}, "warm pool: 4 running (outside desired"),
        (None, None),
    ],
    ids=["stopped", "running", "none"],
)
def test_our_scaler_sees_and_explains_the_warm_pool(warm: dict[str, Any] | None, line: str | None) -> None:
    s = scenario(warm=warm)
    sim = Simulation(s, build_workload(s), controller_factory("queue-scaler", s, build_workload(s))).run()
    (controller,) = sim.controllers
    assert isinstance(controller, QueueScaler)
    (outcome,) = controller.service.tick([controller.config], sim.now + 10)
    assert outcome.decision is not None
    explained = [text for text in outcome.decision.explanation if text.startswith("warm pool")]
    if line is None:
        assert explained == []
    else:
        assert len(explained) == 1 and explained[0].startswith(line)


# The benchmark's warm comparison (bench --warm-pool): the design's burst, cold and warm, per policy.
@pytest.fixture(scope="module")
def seed_burst_warm() -> dict[str, Any]:
    runs: dict[str, Any] = run_warm(["seed-burst"], "Stopped").as_json()["scenarios"]["seed-burst"]
    return runs


def test_the_warm_comparison_runs_ours_and_every_dynamic_peer_cold_and_warm(seed_burst_warm: dict[str, Any]) -> None:
    assert list(seed_burst_warm) == [OURS, *DYNAMIC_PEERS]
    for policy, pair in seed_burst_warm.items():
        cold, warm = pair["cold"], pair["warm"]
        assert cold["jobs"] == warm["jobs"] == 500 and cold["lost"] == warm["lost"] == 0, policy
        assert cold["warm_starts"] == cold["stopped_seconds"] == 0, policy
        # The pool at zero holds max_size = 20 warmed instances: the burst starts all of them.
        assert warm["warm_starts"] == 20, policy
        assert warm["wait_p95"] < cold["wait_p95"], policy
        assert warm["storage_instance_seconds"] > 0, policy
        assert warm["instance_seconds"] == pytest.approx(warm["running_seconds"] + warm["storage_instance_seconds"])


def test_bench_warm_pool_prints_wait_and_cost_next_to_the_cold_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--warm-pool", "Stopped", "--scenario", "seed-burst", "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)["scenarios"]["seed-burst"]["queue-scaler"]
    assert main(["bench", "--warm-pool", "Stopped", "--scenario", "seed-burst"]) == 0
    out = capsys.readouterr().out
    assert "seed-burst: no warm pool (cold) against a Stopped warm pool of AWS's default size" in out
    row = next(line for line in out.splitlines() if line.startswith("queue-scaler "))
    cold, warm = ours["cold"], ours["warm"]
    expected = [
        f"{cold['wait_p95']:,.1f}",
        f"{warm['wait_p95']:,.1f}",
        f"{cold['instance_seconds'] / 3600:,.1f}",
        f"{warm['instance_seconds'] / 3600:,.1f}",
        f"{warm['storage_instance_seconds'] / 3600:,.2f}",
    ]
    assert all(figure in row.split() for figure in expected), (row, expected)


def test_bench_warm_pool_writes_no_doc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "benchmark.md"
    doc.write_text(f"{BEGIN}\n")
    assert main(["bench", "--warm-pool", "Running", "--write-doc", str(doc)]) == 2
    assert "--warm-pool writes no doc" in capsys.readouterr().err


def test_the_benchmark_doc_states_the_fleet_models_warm_figures() -> None:
    text = (REPO_ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")
    section = text[text.index("### Warm pools") : text.index("## Held-out scenarios")]
    figures = [
        f"`fleet.warm_start_seconds` ({billing.WARM_START_SECONDS:g} s)",
        f"{billing.root_volume_gb():g} GB gp3 volume",
        f"${billing.GP3_USD_PER_GB_MONTH:g} per GB-month",
        f"{billing.HOURS_PER_MONTH:g} h",
        *(f"{kind} ${price:g}/h" for kind, price in billing.ON_DEMAND_USD_PER_HOUR.items()),
        f"{billing.storage_share('c7g.large') * 100:.1f} % of a running c7g.large",
        f"{billing.storage_share('c7g.medium') * 100:.1f} % of a c7g.medium",
    ]
    assert [f for f in figures if f not in " ".join(section.split())] == []


@pytest.mark.parametrize(
    ("state", "reuse", "expected"),
    [
        (None, False, None),
        ("Stopped", False, WarmPoolSpec()),
        ("Running", True, WarmPoolSpec(state="Running", reuse_on_scale_in=True)),
    ],
    ids=["cold", "aws-default", "reuse"],
)
def test_the_warm_comparison_gives_every_pool_a_warm_pool_of_aws_default_size(
    state: WarmState | None, reuse: bool, expected: WarmPoolSpec | None
) -> None:
    s = load_scenario("azure-functions-day")  # three pools
    assert [p.warm_pool for p in with_warm_pools(s, state, reuse).pools] == [expected] * 3

"""Scenario files: the built-ins validate, and a bad file fails naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from devkit.cli import main
from devkit.sim.engine import PoolSim
from devkit.sim.metrics import percentile
from devkit.sim.policies.queue_scaler import QueueScaler
from devkit.sim.scenario import REPO_ROOT, Fleet, Scenario, builtin_names, load_scenario
from devkit.sim.workload import build_workload
from queue_scaler.scaling.config import POOL_FACTS, RECOMMENDED, policy, recommended

VALID: dict[str, Any] = {
    "name": "s",
    "duration_seconds": 600,
    "boot_seconds": {"min": 60, "max": 180},
    "pools": [
        {
            "name": "p",
            "max_size": 5,
            "queues": [
                {
                    "name": "q",
                    "target_per_instance": 10,
                    "arrivals": {"burst": {"at": 10, "count": 5}},
                    "service_seconds": {"fixed": 30},
                }
            ],
        }
    ],
}


def test_every_builtin_scenario_validates() -> None:
    names = builtin_names()
    assert len(names) >= 8
    for name in names:
        assert load_scenario(name).name == name


def with_queue(**changes: Any) -> dict[str, Any]:
    queue = VALID["pools"][0]["queues"][0] | changes
    return VALID | {"pools": [VALID["pools"][0] | {"queues": [queue]}]}


def test_every_builtin_pool_runs_queue_scaler_with_the_recommended_setting() -> None:
    """No per-scenario tuning: a built-in's `scaler` states pool facts only (its mean job time), and
    queue-scaler runs the recommended policy on them (docs/benchmark.md, "Recommended setting")."""
    for name in builtin_names():
        scenario = load_scenario(name)
        for pool in scenario.pools:
            assert set(pool.scaler) <= POOL_FACTS, f"{name}/{pool.name}: policy fields in its scaler"
            assert "seconds_per_message" in pool.scaler, f"{name}/{pool.name}: the mean job time is a pool fact"
        for controller in controllers(scenario):
            assert policy(controller.config) == policy(recommended(controller.config)), f"{name}/{controller.pool.name}"
            assert controller.config.slots_per_instance == controller.pool.spec.slots_per_instance


def controllers(scenario: Scenario) -> list[QueueScaler]:
    return [QueueScaler(PoolSim(i, p, scenario, [])) for i, p in enumerate(scenario.pools)]


def test_a_scenarios_own_policy_fields_win_over_the_recommended_setting() -> None:
    scenario = Scenario.model_validate(
        VALID | {"pools": [VALID["pools"][0] | {"scaler": {"tolerance": 0.3, "keep_busy_instances": False}}]}
    )
    (controller,) = controllers(scenario)
    assert controller.config.tolerance == 0.3
    assert controller.config.keep_busy_instances is False
    assert controller.config.count_in_flight_as_slots is RECOMMENDED["count_in_flight_as_slots"]


def test_without_a_mean_job_time_the_recommended_setting_runs_on_backlog_alone() -> None:
    (bare,) = controllers(Scenario.model_validate(VALID))
    assert list(bare.config.signals) == ["backlog"]
    given = VALID["pools"][0] | {"scaler": {"seconds_per_message": 30}}
    (timed,) = controllers(Scenario.model_validate(VALID | {"pools": [given]}))
    assert list(timed.config.signals) == list(RECOMMENDED["signals"])


@pytest.mark.parametrize(
    ("name", "document", "field"),
    [
        (
            "two arrival processes",
            with_queue(arrivals={"burst": {"at": 0, "count": 1}, "poisson": {"per_second": 1}}),
            "pools.0.queues.0.arrivals",
        ),
        ("negative rate", with_queue(arrivals={"poisson": {"per_second": -1}}), "per_second"),
        ("no service time", with_queue(service_seconds={}), "pools.0.queues.0.service_seconds"),
        ("misspelled field", with_queue(target_per_instanse=3), "target_per_instanse"),
        ("boot max below min", VALID | {"boot_seconds": {"min": 100, "max": 10}}, "boot_seconds"),
        (
            "from_trace without a timestamps trace",
            with_queue(service_seconds={"from_trace": {"column": "x", "per_unit": 1}}),
            "pools.0.queues.0",
        ),
        ("bad pool configuration", VALID | {"pools": [VALID["pools"][0] | {"scaler": {"tolerance": 2}}]}, "pools"),
        ("drain not a template value", VALID | {"pools": [VALID["pools"][0] | {"drain_seconds": 45}]}, "drain_seconds"),
        ("misspelled fleet field", VALID | {"fleet": {"availability_zone": 2}}, "fleet.availability_zone"),
        ("launch failures above half", VALID | {"fleet": {"launch_failure_rate": 0.9}}, "fleet.launch_failure_rate"),
        ("slow boots faster", VALID | {"fleet": {"slow_boots": {"factor": 0.5}}}, "fleet.slow_boots.factor"),
        (
            "one queue name in two pools",
            VALID | {"pools": [VALID["pools"][0], VALID["pools"][0] | {"name": "other"}]},
            "duplicate queue names",
        ),
    ],
)
def test_an_invalid_scenario_names_the_field(name: str, document: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Scenario.model_validate(document)
    where = [".".join(str(p) for p in e["loc"]) + " " + e["msg"] for e in raised.value.errors()]
    assert any(field in text for text in where), (name, where)


def test_a_burst_draws_its_count_within_its_window() -> None:
    s = Scenario.model_validate(with_queue(arrivals={"burst": {"at": 100, "count": 50, "over_seconds": 20}}))
    workload = build_workload(s)
    assert len(workload) == 50
    assert all(100 <= t <= 120 for t in workload.arrival)


def test_simulate_exits_2_naming_the_field_of_an_invalid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: s\nduration_seconds: -1\nboot_seconds: {min: 1, max: 2}\npools: []\n", encoding="utf-8")
    assert main(["simulate", str(path), "--json"]) == 2
    assert "duration_seconds" in capsys.readouterr().err


def test_simulate_json_prints_the_contract_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import yaml

    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(VALID), encoding="utf-8")
    assert main(["simulate", str(path), "--policy", "keda", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    contract = {
        "jobs",
        "completed",
        "lost",
        "wait_p50",
        "wait_p95",
        "wait_p99",
        "wait_max",
        "instance_seconds",
        "scale_actions",
        "reversals",
        "reaction_seconds",
        "queues",
        "worst_objective_ratio",
        "restarted",
        "adequate_seconds",
    }
    assert contract <= metrics.keys()
    assert metrics["jobs"] == metrics["completed"] == 5
    assert set(metrics["queues"]["q"]) == {"jobs", "wait_p95", "objective", "objective_ratio"}


def test_the_contracts_example_validates_and_shows_the_fleet_defaults() -> None:
    import yaml

    text = (REPO_ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    section = text[text.index("## 5. Scenario files") :]
    block = section[section.index("```yaml") + len("```yaml") : section.index("```", section.index("```yaml") + 7)]
    example = Scenario.model_validate(yaml.safe_load(block))
    assert example.fleet == Fleet(), "the documented fleet block is the defaults"


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 95, 0.0), ([7.0], 50, 7.0), ([0.0, 10.0], 50, 5.0), ([1.0, 2.0, 3.0, 4.0, 5.0], 100, 5.0)],
    ids=["empty", "single", "interpolated", "max"],
)
def test_percentile_interpolates_between_ranks(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_simulate_says_an_empty_scenario_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# to be written\n")
    assert main(["simulate", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert "empty.yaml is empty: a scenario is a YAML mapping" in err and "Scenario" not in err.replace("scenario", "")

"""Daily arrival patterns (scenario.Daily) and the feature scenarios built from them (scenarios/features):
seeded, so the same seed gives the same jobs; each day shifted and scaled within its stated bounds; and
each feature scenario's pool runs queue-scaler's recommended policy with the feature on, the peers with
their equivalents."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from devkit.sim.bench import BUILT_IN, FEATURES, all_names, known_names, scenario_set
from devkit.sim.engine import PoolSim, Simulation
from devkit.sim.policies import keda as keda_model
from devkit.sim.policies.predictive import capacity_floor
from devkit.sim.policies.queue_scaler import FEATURE_SIGNALS, QueueScaler
from devkit.sim.scenario import DAY, Scenario, feature_names, load_scenario
from devkit.sim.workload import build_workload
from queue_scaler.scaling.config import POOL_FACTS, policy, recommended
from queue_scaler.scaling.domain.models import Decision
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.scaling.services.scaling import PoolOutcome

BURST = {"burst": {"at": 0, "count": 100, "over_seconds": 60}}


def scenario(daily: dict[str, Any], seed: int = 1, days: int = 3) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": days * DAY,
            "seed": seed,
            "boot_seconds": {"min": 60, "max": 120},
            "pools": [
                {
                    "name": "p",
                    "drain_seconds": 60,
                    "max_size": 10,
                    "queues": [
                        {
                            "name": "q",
                            "target_per_instance": 1,
                            "arrivals": {"daily": {"days": days} | daily},
                            "service_seconds": {"fixed": 60},
                        }
                    ],
                }
            ],
        }
    )


def per_day(arrivals: list[float]) -> list[list[float]]:
    days: dict[int, list[float]] = {}
    for at in arrivals:
        days.setdefault(int(at // DAY), []).append(at % DAY)
    return [days.get(d, []) for d in range(max(days) + 1)]


@pytest.mark.parametrize(
    "daily",
    [
        {"day": BURST, "offset_seconds": 32400, "jitter_seconds": 120, "volume_sigma": 0.2},
        {"day": {"poisson": {"per_second": 0.01}}, "volume_sigma": 0.3},
    ],
    ids=["burst", "poisson"],
)
def test_the_same_seed_gives_the_same_jobs_and_another_seed_others(daily: dict[str, Any]) -> None:
    first, again, other = (build_workload(scenario(daily, seed)) for seed in (1, 1, 2))
    assert first.arrival == again.arrival and first.service == again.service
    assert first.arrival != other.arrival


@pytest.mark.parametrize(
    ("daily", "counts"),
    [
        # No variation: every day's burst the same size, at the same second of the day.
        ({"day": BURST, "offset_seconds": 32400}, [100, 100, 100]),
        # A day's pattern cut at length_seconds: half the burst's spread.
        ({"day": BURST, "offset_seconds": 32400, "length_seconds": 30}, None),
    ],
    ids=["repeated", "cut"],
)
def test_a_daily_pattern_repeats_each_day_at_its_offset(daily: dict[str, Any], counts: list[int] | None) -> None:
    days = per_day(build_workload(scenario(daily)).arrival)
    assert len(days) == 3
    if counts is not None:
        assert [len(d) for d in days] == counts
    length = daily.get("length_seconds", 60)
    for times in days:
        assert all(32400 <= t < 32400 + length for t in times)
        if counts is None:
            assert 0 < len(times) < 100


@pytest.mark.parametrize(
    ("jitter", "sigma", "shifted", "varied"),
    [(0, 0, False, False), (600, 0, True, False), (0, 0.5, False, True), (600, 0.5, True, True)],
    ids=["none", "jitter", "volume", "both"],
)
def test_day_to_day_variation_stays_within_its_bounds(jitter: float, sigma: float, shifted: bool, varied: bool) -> None:
    daily = {"day": {"burst": {"at": 0, "count": 200}}, "offset_seconds": 43200, "jitter_seconds": jitter}
    days = per_day(build_workload(scenario(daily | {"volume_sigma": sigma}, days=5)).arrival)
    starts = {round(min(d)) for d in days}
    assert all(abs(s - 43200) <= jitter for s in starts)
    assert (len(starts) > 1) is shifted
    assert (len({len(d) for d in days}) > 1) is varied


def test_a_daily_pattern_of_daily_patterns_is_refused() -> None:
    with pytest.raises(ValidationError, match="not another daily pattern"):
        scenario({"day": {"daily": {"days": 1, "day": BURST}}})


def test_the_feature_scenarios_are_seeded() -> None:
    for name in feature_names():
        first, again = build_workload(load_scenario(name)), build_workload(load_scenario(name))
        assert first.arrival == again.arrival and first.service == again.service, name


def test_the_recurring_burst_comes_at_09_00_each_day_within_its_jitter() -> None:
    arrivals = build_workload(load_scenario("recurring-burst")).arrival
    hours = Counter(int(at // 3600) for at in arrivals)
    # Each day's busiest hour is 09:00 (or the 2 minutes of jitter before it), with hundreds of jobs.
    for day in range(3):
        busiest = max(range(24 * day, 24 * (day + 1)), key=lambda h: hours[h])
        assert busiest == 24 * day + 9, day
        assert hours[busiest] > 300


def test_the_three_days_keep_the_traces_daily_pattern() -> None:
    arrivals = build_workload(load_scenario("azure-functions-3days")).arrival
    hours = Counter(int(at // 3600) % 24 for at in arrivals)
    # The trace's quietest hour (07:00) and busiest (18:00), over three days.
    assert hours[18] > 2.5 * hours[7]


def test_each_feature_pool_runs_the_recommended_policy_with_the_feature_on() -> None:
    """No other tuning: a feature scenario's `scaler` states pool facts and feature signals only, and
    queue-scaler runs the recommended policy with those signals added to its own."""
    for name in feature_names():
        s = load_scenario(name)
        for index, spec in enumerate(s.pools):
            assert set(spec.scaler) <= POOL_FACTS | {"signals"}, name
            features = set(spec.scaler.get("signals", {}))
            assert features and features <= FEATURE_SIGNALS, name
            config = QueueScaler(PoolSim(index, spec, s, [])).config
            base = recommended(config)
            assert set(config.signals) == set(base.signals) | features, name
            without = config.model_copy(update={"signals": {k: config.signals[k] for k in base.signals}})
            assert policy(without) == policy(base), name


def test_the_peers_get_the_same_features() -> None:
    burst = load_scenario("recurring-burst")
    pool = PoolSim(0, burst.pools[0], burst, [60.0])
    assert [c.minimum for c in keda_model.cron_triggers(pool)] == [40]
    assert [s.minimum for s in capacity_floor(pool.config, []).schedules] == [40]
    days = load_scenario("azure-functions-3days")
    floor = capacity_floor(PoolSim(0, days.pools[0], days, [60.0]).config, [])
    assert floor.predictive is not None and not floor.schedules


class RecordingScaler(QueueScaler):
    """queue-scaler as the simulator runs it, keeping each tick's decision (the product's Decision)."""

    def __init__(self, pool: PoolSim) -> None:
        super().__init__(pool)
        self.decisions: list[tuple[float, Decision]] = []
        tick = self.service.tick

        def recorded(pools: list[PoolConfig], now: float) -> list[PoolOutcome]:
            outcomes = tick(pools, now)
            self.decisions.append((now, outcomes[0].decision))
            return outcomes

        self.service.tick = recorded  # type: ignore[method-assign]


def test_the_forecast_floors_the_second_day_from_the_first_days_work_samples() -> None:
    """The simulator keeps the scaler's history across days (thinned work samples, as the product's
    History.record keeps them) on the simulated clock: with no history a day back there is no floor,
    said so; a day after a 01:00 burst, the forecast raises the pool before the next one arrives."""
    burst_at = 3600.0
    scenario = Scenario.model_validate(
        {
            "name": "t",
            "duration_seconds": DAY + burst_at + 600,
            "seed": 5,
            "boot_seconds": {"min": 60, "max": 120},
            "fleet": {"launch_failure_rate": 0, "slow_boots": {"fraction": 0}},
            "pools": [
                {
                    "name": "p",
                    "slots_per_instance": 4,
                    "drain_seconds": 60,
                    "max_size": 20,
                    "scaler": {
                        "seconds_per_message": 60,
                        "signals": {"forecast": {"mode": "forecast_and_scale", "lead_seconds": 120}},
                    },
                    "queues": [
                        {
                            "name": "q",
                            "target_per_instance": 4,
                            "arrivals": {
                                "daily": {
                                    "days": 2,
                                    "offset_seconds": burst_at,
                                    "day": {"burst": {"at": 0, "count": 400, "over_seconds": 300}},
                                }
                            },
                            "service_seconds": {"fixed": 60},
                        }
                    ],
                }
            ],
        }
    )
    recorders: list[RecordingScaler] = []

    def factory(pool: PoolSim) -> RecordingScaler:
        recorders.append(RecordingScaler(pool))
        return recorders[-1]

    Simulation(scenario, build_workload(scenario), factory, record_series=False).run()
    decisions = dict(recorders[0].decisions)
    first_day = next(d for t, d in decisions.items() if burst_at - 120 <= t < burst_at)
    assert any("no floor" in line for line in first_day.explanation)
    assert first_day.desired == 0
    ahead = [d for t, d in decisions.items() if DAY + burst_at - 120 <= t < DAY + burst_at]
    assert ahead and all(d.signal == "forecast" for d in ahead)
    assert ahead[-1].desired > 0
    assert any("1 past day(s)" in line for line in ahead[-1].explanation)


@pytest.mark.parametrize(
    ("name", "label", "default_run"),
    [("recurring-burst", FEATURES, False), ("azure-functions-3days", FEATURES, False), ("seed-burst", BUILT_IN, True)],
)
def test_feature_scenarios_run_by_name_only_and_are_reported_as_their_own_set(
    name: str, label: str, default_run: bool
) -> None:
    assert scenario_set(name) == label
    assert name in known_names()
    assert (name in all_names()) is default_run

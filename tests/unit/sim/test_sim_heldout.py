"""The held-out scenarios (issue 26): committed as drawn, reproducible, apart from the built-ins."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from devkit.sim import heldout
from devkit.sim.scenario import HELDOUT_DIR, LogNormal, builtin_names, heldout_names, load_scenario
from devkit.sim.workload import build_workload
from queue_scaler.scaling.config import POOL_FACTS


def test_there_are_at_least_four_and_none_is_a_builtin() -> None:
    names = heldout_names()
    assert len(names) >= 4
    assert not set(names) & set(builtin_names())
    assert names == [f"heldout-{kind}" for kind in heldout.KINDS]


def test_the_committed_files_are_what_the_seeded_script_draws(tmp_path: Path) -> None:
    # Reproducible: `python -m devkit.sim.heldout` with the committed seed writes the same bytes, so
    # no file was edited by hand after it was drawn.
    heldout.write(tmp_path, heldout.SEED)
    for name in [*heldout_names(), "SUITE"]:
        suffix = "" if name == "SUITE" else ".yaml"
        drawn = (tmp_path / f"{name}{suffix}").read_text(encoding="utf-8")
        assert drawn == (HELDOUT_DIR / f"{name}{suffix}").read_text(encoding="utf-8"), name


def test_another_seed_draws_other_windows(tmp_path: Path) -> None:
    heldout.write(tmp_path, heldout.SEED + 1)
    differing = [
        n
        for n in heldout_names()
        if (tmp_path / f"{n}.yaml").read_text(encoding="utf-8")
        != (HELDOUT_DIR / f"{n}.yaml").read_text(encoding="utf-8")
    ]
    assert differing == heldout_names()


@pytest.mark.parametrize("name", heldout_names())
def test_each_says_how_it_was_drawn_and_runs_the_recommended_setting(name: str) -> None:
    text = (HELDOUT_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Held-out scenario (issue 26), never tuned on")
    assert f"python -m devkit.sim.heldout --seed {heldout.SEED}" in text
    assert "../shared/traces/README.md" in text
    scenario = load_scenario(name)
    assert scenario.name == name
    for pool in scenario.pools:
        # Pool facts only: queue-scaler runs the recommended setting here as on the built-ins.
        assert set(pool.scaler) <= POOL_FACTS, f"{name}/{pool.name}"
        assert "seconds_per_message" in pool.scaler


@pytest.mark.parametrize("name", heldout_names())
def test_each_draws_a_workload_of_bounded_size(name: str) -> None:
    # Small enough that the whole set simulates in a few minutes on 2 cores; jobs in every pool.
    scenario = load_scenario(name)
    workload = build_workload(scenario)
    assert 500 <= len(workload) <= 10_000
    assert set(workload.pool) == set(range(len(scenario.pools)))


def test_a_capped_lognormal_never_draws_past_its_cap() -> None:
    scenario = load_scenario("heldout-functions-long")
    lognormal = scenario.pools[0].queues[0].service_seconds.lognormal
    assert lognormal is not None and lognormal.max is not None
    workload = build_workload(scenario)
    assert max(workload.service) <= lognormal.max
    # The tail is heavy: some jobs reach the cap (the longest run the trace recorded).
    assert max(workload.service) == lognormal.max


def test_a_cap_below_the_p90_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"max \(50.0\) is below p90 \(60.0\)"):
        LogNormal.model_validate({"median": 30, "p90": 60, "max": 50})
    assert LogNormal.model_validate({"median": 30, "p90": 60}).max is None

"""The benchmark's goal rule (docs/benchmark.md, "The goal"), table-driven: P the better dynamic
peer, B_r the reactive oracle's lowest wait p95 over its holds at instance-seconds no higher than
P's. Nothing lost; instance-seconds <= P's; wait p95 <= P's, and <= B_r + 0.5 (P - B_r) wherever
P - B_r >= max(10 s, 2 % of P); the worst queue's p95/objective <= P's."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sim.bench import (
    DYNAMIC_PEERS,
    better_peer,
    gap_closed,
    gap_counts,
    goal_check,
    goal_misses,
    reactive_bound,
    swept,
    wait_bound,
)
from devkit.sim.runner import RunResult


def run(wait: float, cost: float, lost: int = 0, worst: float | None = None) -> dict[str, Any]:
    return {"wait_p95": wait, "instance_seconds": cost, "lost": lost, "worst_objective_ratio": worst}


def scenario(
    ours: dict[str, Any],
    peer_wait: float,
    sweep: dict[str, tuple[float, float]],
    peer_cost: float = 100.0,
    peer_worst: float | None = None,
) -> dict[str, Any]:
    """P is target-tracking; every other dynamic peer and the fixed fleet wait longer; `sweep` gives
    the reactive oracle's (wait p95, instance-seconds) per hold."""
    runs = {p: run(peer_wait + 1000, 1.0) for p in DYNAMIC_PEERS}
    runs["target-tracking"] = run(peer_wait, peer_cost, worst=peer_worst)
    runs["fixed"] = run(0.0, 1.0)  # no peer: it may beat everyone without becoming P
    runs["oracle"] = run(0.0, 50.0)  # the clairvoyant reference: never part of the rule
    runs["reactive-oracle"] = {
        **run(0.0, 0.0),
        "sweep": {label: {"wait_p95": w, "instance_seconds": c, "lost": 0} for label, (w, c) in sweep.items()},
    }
    runs["queue-scaler"] = ours
    return runs


def test_the_dynamic_peers_are_target_tracking_and_keda() -> None:
    assert {"target-tracking", "keda"} <= set(DYNAMIC_PEERS)
    assert not {"fixed", "oracle", "reactive-oracle"} & set(DYNAMIC_PEERS)


def test_the_better_peer_is_the_lowest_wait_then_the_lowest_cost() -> None:
    runs = {p: run(500, 10) for p in DYNAMIC_PEERS}
    runs["target-tracking"] = run(80, 90)
    runs["keda"] = run(80, 70)
    runs["fixed"] = run(1, 1)
    assert better_peer(runs) == "keda"


SWEEP = {"hold 0 s": (50.0, 90.0), "hold 120 s": (30.0, 110.0), "hold 600 s": (20.0, 150.0)}


@pytest.mark.parametrize(
    ("peer_cost", "expected"),
    [
        (100.0, (50.0, "hold 0 s")),
        (110.0, (30.0, "hold 120 s")),
        (1000.0, (20.0, "hold 600 s")),
        (89.0, (None, None)),
    ],
    ids=["only the cheapest hold within P's cost", "a cost equal to P's counts", "all within", "none within"],
)
def test_b_r_is_the_lowest_wait_within_ps_cost(peer_cost: float, expected: tuple[float | None, str | None]) -> None:
    runs = scenario(run(0, 0), 200.0, SWEEP, peer_cost=peer_cost)
    assert reactive_bound(runs, "target-tracking") == expected


def test_b_r_ties_go_to_the_cheaper_hold() -> None:
    runs = scenario(run(0, 0), 200.0, {"a": (40.0, 95.0), "b": (40.0, 80.0)})
    assert reactive_bound(runs, "target-tracking") == (40.0, "b")


def test_a_run_without_a_sweep_counts_as_its_one_setting() -> None:
    runs = scenario(run(0, 0), 200.0, {})
    runs["reactive-oracle"] = run(70.0, 90.0)
    assert reactive_bound(runs, "target-tracking") == (70.0, "reactive-oracle")


@pytest.mark.parametrize(
    ("peer", "reactive", "counts", "bound"),
    [
        (200.0, 100.0, True, 150.0),
        (200.0, 190.0, True, 195.0),
        (200.0, 190.001, False, 200.0),
        (1000.0, 980.0, True, 990.0),
        (1000.0, 980.001, False, 1000.0),
        (30.0, 20.0, True, 25.0),
        (30.0, 20.001, False, 30.0),
        (200.0, None, False, 200.0),
        (100.0, 120.0, False, 100.0),
        (0.0, 0.0, False, 0.0),
    ],
    ids=[
        "a wide gap: halfway from P to B_r",
        "a gap of exactly 10 s (over 2 % of P) counts",
        "a gap just under 10 s: P",
        "a gap of exactly 2 % of P (over 10 s) counts",
        "a gap just under 2 % of P: P",
        "small P: 10 s is the floor",
        "small P: just under 10 s",
        "no B_r within P's cost: P",
        "B_r above P: P",
        "both zero",
    ],
)
def test_the_wait_bound(peer: float, reactive: float | None, counts: bool, bound: float) -> None:
    assert gap_counts(peer, reactive) is counts
    assert wait_bound(peer, reactive) == pytest.approx(bound)


@pytest.mark.parametrize(
    ("ours", "peer", "sweep", "peer_worst", "misses"),
    [
        (run(150.0, 100.0), 200.0, {"h": (100.0, 100.0)}, None, []),
        (run(150.001, 100.0), 200.0, {"h": (100.0, 100.0)}, None, ["wait"]),
        (run(195.0, 100.0), 200.0, {"h": (195.0, 100.0)}, None, []),
        (run(200.0, 100.0), 200.0, {"h": (195.0, 100.0)}, None, []),
        (run(200.001, 100.0), 200.0, {"h": (195.0, 100.0)}, None, ["wait"]),
        (run(199.0, 100.0), 200.0, {"h": (100.0, 100.001)}, None, []),
        (run(120.0, 100.001), 200.0, {"h": (100.0, 100.0)}, None, ["cost"]),
        (run(120.0, 100.0, worst=1.2), 200.0, {"h": (100.0, 100.0)}, 1.1, ["queue"]),
        (run(120.0, 100.0, worst=1.1), 200.0, {"h": (100.0, 100.0)}, 1.1, []),
        (run(120.0, 100.0, worst=1.2), 200.0, {"h": (100.0, 100.0)}, None, []),
        (run(120.0, 100.0, lost=1), 200.0, {"h": (100.0, 100.0)}, None, ["lost"]),
        (run(300.0, 200.0, lost=2, worst=3.0), 200.0, {"h": (100.0, 100.0)}, 1.0, ["wait", "cost", "queue", "lost"]),
    ],
    ids=[
        "exactly halfway from P to B_r",
        "just over halfway",
        "a gap of 5 s: at B_r, met",
        "a gap of 5 s: at P, met",
        "a gap of 5 s: over P",
        "B_r dearer than P: the bound is P",
        "cost over P's",
        "worst queue over P's",
        "worst queue equal to P's",
        "no objective for P: nothing to judge",
        "a lost job",
        "everything missed",
    ],
)
def test_the_goal(
    ours: dict[str, Any],
    peer: float,
    sweep: dict[str, tuple[float, float]],
    peer_worst: float | None,
    misses: list[str],
) -> None:
    check = goal_check(scenario(ours, peer, sweep, peer_worst=peer_worst))
    assert check["better_peer"] == "target-tracking"
    assert goal_misses(check) == misses
    assert check["met"] is (not misses)


@pytest.mark.parametrize(
    ("ours", "peer", "reactive", "closed"),
    [
        (100.0, 200.0, 100.0, 1.0),
        (200.0, 200.0, 100.0, 0.0),
        (150.0, 200.0, 100.0, 0.5),
        (300.0, 200.0, 100.0, -1.0),
        (5.0, 100.0, 100.0, None),
        (5.0, 100.0, None, None),
    ],
    ids=["at B_r", "at the peer", "half the gap", "worse than the peer", "no gap", "no B_r"],
)
def test_gap_closed(ours: float, peer: float, reactive: float | None, closed: float | None) -> None:
    assert gap_closed(ours, peer, reactive) == closed


def test_the_check_reports_p_b_r_b_ours_gap_and_cost_ratio() -> None:
    check = goal_check(scenario(run(130.0, 80.0, worst=0.5), 200.0, SWEEP, peer_worst=0.7))
    assert check["peer_wait_p95"] == 200.0
    assert (check["reactive_wait_p95"], check["reactive_setting"]) == (50.0, "hold 0 s")
    assert check["oracle_wait_p95"] == 0.0
    assert check["wait_p95"] == 130.0
    assert check["wait_bound"] == 125.0
    assert check["gap_closed"] == 0.467
    assert check["instance_seconds_ratio"] == 0.8
    assert (check["worst_objective_ratio"], check["peer_worst_objective_ratio"]) == (0.5, 0.7)
    assert goal_misses(check) == ["wait"]


def result(policy: str, wait: float, cost: float) -> RunResult:
    return RunResult("t", policy, run(wait, cost), [], 0.1)


@pytest.mark.parametrize(
    ("peer_cost", "shown"),
    [(100.0, "hold 0 s"), (110.0, "hold 120 s"), (80.0, "hold 0 s")],
    ids=["B_r's hold", "a dearer hold within P's cost", "none within P's cost: the cheapest"],
)
def test_the_bench_shows_the_hold_giving_b_r_with_the_whole_sweep(peer_cost: float, shown: str) -> None:
    runs = {p: result(p, 1000.0, 1.0) for p in DYNAMIC_PEERS}
    runs["target-tracking"] = result("target-tracking", 200.0, peer_cost)
    settings = {label: result("reactive-oracle", w, c) for label, (w, c) in SWEEP.items()}
    row = swept(runs, "reactive-oracle", settings)
    assert row.metrics["setting"] == shown
    assert row.metrics["wait_p95"] == settings[shown].metrics["wait_p95"]
    assert row.metrics["sweep"] == {
        label: {"wait_p95": w, "instance_seconds": c, "lost": 0} for label, (w, c) in SWEEP.items()
    }

"""The benchmark's goal rule (docs/benchmark.md, "The goal"): B the oracle's wait p95, P the better
dynamic peer's; ours <= B + 0.4 (P - B) (<= 1.05 B when P is within 5 % of B), at no more
instance-seconds than P, with nothing lost."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.sim.bench import DYNAMIC_PEERS, better_peer, gap_closed, goal_check, wait_bound


def run(wait: float, cost: float, lost: int = 0) -> dict[str, Any]:
    return {"wait_p95": wait, "instance_seconds": cost, "lost": lost}


def scenario(ours: dict[str, Any], peer_wait: float, oracle_wait: float, peer_cost: float = 100.0) -> dict[str, Any]:
    """P is target-tracking; every other dynamic peer and the fixed fleet wait longer."""
    runs = {p: run(peer_wait + 1000, 1.0) for p in DYNAMIC_PEERS}
    runs["target-tracking"] = run(peer_wait, peer_cost)
    runs["fixed"] = run(0.0, 1.0)  # no peer: it may beat everyone without becoming P
    runs["oracle"] = run(oracle_wait, 50.0)
    runs["queue-scaler"] = ours
    return runs


def test_the_dynamic_peers_are_target_tracking_and_keda() -> None:
    assert {"target-tracking", "keda"} <= set(DYNAMIC_PEERS)
    assert "fixed" not in DYNAMIC_PEERS and "oracle" not in DYNAMIC_PEERS


def test_the_better_peer_is_the_lowest_wait_then_the_lowest_cost() -> None:
    runs = {p: run(500, 10) for p in DYNAMIC_PEERS}
    runs["target-tracking"] = run(80, 90)
    runs["keda"] = run(80, 70)
    runs["fixed"] = run(1, 1)
    assert better_peer(runs) == "keda"


@pytest.mark.parametrize(
    ("peer", "oracle", "bound"),
    [
        (200.0, 100.0, 140.0),
        (105.0, 100.0, 105.0),
        (105.1, 100.0, 100.0 + 0.4 * 5.1),
        (90.0, 100.0, 105.0),
        (0.0, 0.0, 0.0),
        (10.0, 0.0, 4.0),
    ],
    ids=[
        "gap: B + 0.4 (P - B)",
        "P exactly 5 % above B: 1.05 B",
        "P just over 5 % above B: the gap rule",
        "P below B: 1.05 B",
        "both zero",
        "B zero: 0.4 P",
    ],
)
def test_the_wait_bound(peer: float, oracle: float, bound: float) -> None:
    assert wait_bound(peer, oracle) == pytest.approx(bound)


@pytest.mark.parametrize(
    ("ours", "peer", "oracle", "met", "misses"),
    [
        (run(140.0, 100.0), 200.0, 100.0, True, []),
        (run(140.001, 100.0), 200.0, 100.0, False, ["wait"]),
        (run(120.0, 100.0), 200.0, 100.0, True, []),
        (run(105.0, 100.0), 104.0, 100.0, True, []),
        (run(105.01, 100.0), 104.0, 100.0, False, ["wait"]),
        (run(103.0, 100.0), 104.0, 100.0, True, []),
        (run(120.0, 100.001), 200.0, 100.0, False, ["cost"]),
        (run(120.0, 100.0, lost=1), 200.0, 100.0, False, ["lost"]),
        (run(300.0, 200.0, lost=2), 200.0, 100.0, False, ["wait", "cost", "lost"]),
    ],
    ids=[
        "exactly at the bound",
        "over the bound",
        "under the bound",
        "P within 5 % of B: at 1.05 B",
        "P within 5 % of B: over 1.05 B",
        "P within 5 % of B: above P yet under 1.05 B",
        "cost over P's",
        "a lost job",
        "everything missed",
    ],
)
def test_the_goal(ours: dict[str, Any], peer: float, oracle: float, met: bool, misses: list[str]) -> None:
    check = goal_check(scenario(ours, peer, oracle))
    assert check["better_peer"] == "target-tracking"
    assert check["met"] is met
    assert [name for name in ("wait", "cost", "lost") if not check[f"{name}_ok"]] == misses


@pytest.mark.parametrize(
    ("ours", "peer", "oracle", "closed"),
    [
        (100.0, 200.0, 100.0, 1.0),
        (200.0, 200.0, 100.0, 0.0),
        (140.0, 200.0, 100.0, 0.6),
        (300.0, 200.0, 100.0, -1.0),
        (5.0, 100.0, 100.0, None),
    ],
    ids=["at the oracle", "at the peer", "60 % of the gap", "worse than the peer", "no gap"],
)
def test_gap_closed(ours: float, peer: float, oracle: float, closed: float | None) -> None:
    assert gap_closed(ours, peer, oracle) == closed


def test_the_check_reports_p_b_ours_gap_and_cost_ratio() -> None:
    check = goal_check(scenario(run(130.0, 80.0), 200.0, 100.0))
    assert check["peer_wait_p95"] == 200.0
    assert check["oracle_wait_p95"] == 100.0
    assert check["wait_p95"] == 130.0
    assert check["wait_bound"] == 140.0
    assert check["gap_closed"] == 0.7
    assert check["instance_seconds_ratio"] == 0.8

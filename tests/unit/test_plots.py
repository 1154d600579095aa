"""The pictures: the demo's timeline and the bench's small multiples and wait-vs-cost scatter."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pytest

from devkit.demo_plot import Timeline
from devkit.sim.plot import runs_figure, tradeoff_figure
from devkit.sim.runner import RunResult


def status(
    desired: int, in_service: int, backlog: int, states: list[str], dead: list[str], *, held: bool = False
) -> dict[str, Any]:
    instances = [{"id": f"i-{n}", "state": s} for n, s in enumerate(states)]
    limited_by = "ScaleDownStabilized" if held else "None"
    return {
        "pools": {"video": {"desired": desired, "in_service": in_service, "instances": instances}},
        "queues": {"q": {"pool": "video", "visible": backlog, "in_flight": 0, "dlq": 0}},
        "dead_lettered_jobs": dead,
        "scaler": {"last": [{"pool": "video", "decision": {"limited_by": limited_by}}]},
    }


@pytest.fixture
def timeline() -> Timeline:
    line = Timeline(scale_down_window=15)
    line.add(0, status(0, 0, 0, [], []))
    line.burst_at = 3
    line.add(3, status(0, 0, 40, [], []))
    line.add(6, status(3, 1, 35, ["InService", "Pending:Wait", "Pending"], []))
    line.add(20, status(3, 3, 0, ["InService"] * 3, ["video-pro-5-abc"], held=True))
    line.add(30, status(3, 3, 0, ["InService"] * 3, ["video-pro-5-abc"], held=True))
    line.add(40, status(1, 1, 0, ["InService", "Terminating:Wait", "Terminating:Wait"], ["video-pro-5-abc"]))
    return line


def test_given_a_demo_timeline_when_drawn_then_backlog_and_instances_have_their_own_panels_and_marks(
    timeline: Timeline,
) -> None:
    figure = timeline.figure("video")
    backlog, fleet = figure.axes
    assert backlog.get_ylabel().startswith("messages") and fleet.get_ylabel() == "instances"
    assert backlog.get_title() == "queue-scaler demo: pool video"
    # One instance axis, integer ticks only.
    assert all(float(tick).is_integer() for tick in fleet.get_yticks())
    fleet_labels = fleet.get_legend_handles_labels()[1]
    backlog_labels = backlog.get_legend_handles_labels()[1]
    assert {"in service", "desired", "burst", "drain begins", "held by the scale-down window (15 s)"} <= set(
        fleet_labels
    )
    assert {"backlog", "burst", "dead letter"} <= set(backlog_labels)
    # The legends sit outside the axes, so they hide no line.
    for axis in (backlog, fleet):
        legend = axis.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 >= axis.get_window_extent().x1 - 1
    assert timeline.drains["video"] == [40, 40] and timeline.dead_letters["video"] == [20]
    assert timeline.scale_down_spans("video") == [(20, 30)]
    plt.close(figure)


def run(policy: str, wait: float, seconds: float) -> RunResult:
    series = [(0.0, 0, 0, 0, 0.0), (60.0, 50, 2, 4, 30.0), (120.0, 0, 4, 4, 0.0)]
    return RunResult("burst", policy, {"wait_p95": wait, "instance_seconds": seconds}, series, 0.1)


def test_given_a_scenarios_runs_when_drawn_then_one_titled_panel_per_policy_on_shared_axes_with_max_size() -> None:
    runs = [run("queue-scaler", 120, 7200), run("keda", 300, 3600), run("fixed", 20, 14400)]
    figure = runs_figure(runs, "burst", max_size=10)
    backlog_row, fleet_row = figure.axes[:3], figure.axes[3:]
    assert len(figure.axes) == 6
    assert [a.get_title() for a in backlog_row] == [
        "queue-scaler\nwait p95 120 s, 2.0 inst-h",
        "keda\nwait p95 300 s, 1.0 inst-h",
        "fixed\nwait p95 20 s, 4.0 inst-h",
    ]
    # Shared axes: every panel of a row shows the same ranges.
    assert len({a.get_ylim() for a in backlog_row}) == 1 and len({a.get_ylim() for a in fleet_row}) == 1
    assert len({a.get_xlim() for a in figure.axes}) == 1
    assert all("max size 10" in a.get_legend_handles_labels()[1] for a in fleet_row)
    assert fleet_row[0].get_ylabel() == "instances" and backlog_row[0].get_ylabel() == "visible messages"
    plt.close(figure)


def test_given_every_scenario_when_drawn_then_each_has_a_wait_vs_cost_panel_with_every_policy_labelled() -> None:
    scenarios = {
        name: [run("queue-scaler", 120, 7200), run("keda", 300, 3600), run("oracle", 60, 3000)]
        for name in ("seed-burst", "stage-500", "steady-poisson")
    }
    figure = tradeoff_figure(scenarios)
    visible = [a for a in figure.axes if a.get_visible()]
    assert [a.get_title() for a in visible] == list(scenarios)
    for axis in visible:
        assert axis.get_xlabel() == "instance-hours" and axis.get_ylabel() == "wait p95 (s)"
        assert {t.get_text() for t in axis.texts} == {"queue-scaler", "keda", "oracle"}
    plt.close(figure)

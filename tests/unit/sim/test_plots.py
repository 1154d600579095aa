"""The pictures: the demo's timeline and the bench's small multiples and wait-vs-cost scatter."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text

from devkit.demo_plot import BOOTING_LABEL as DEMO_BOOTING_LABEL
from devkit.demo_plot import RECOMMENDATION_LABEL, Timeline
from devkit.sim.engine import SeriesPoint
from devkit.sim.plot import (
    BOOTING_LABEL,
    PROTECTED_LABEL,
    WINNER_COLOR,
    WINNER_LABEL,
    WINNER_RULE,
    runs_figure,
    tradeoff_figure,
)
from devkit.sim.runner import RunResult


def status(desired: int, in_service: int, backlog: int, states: list[str], dead: list[str]) -> dict[str, Any]:
    instances = [{"id": f"i-{n}", "state": s} for n, s in enumerate(states)]
    # The status's last decision says nothing of when its tick ran: the timeline must not use it.
    return {
        "pools": {"video": {"desired": desired, "in_service": in_service, "instances": instances}},
        "queues": {"q": {"pool": "video", "visible": backlog, "in_flight": 0, "dlq": 0}},
        "dead_lettered_jobs": dead,
        "scaler": {"last": [{"pool": "video", "decision": {"limited_by": "ScaleDownStabilized"}}]},
    }


#: The demo started at 12:00:00 UTC; the scaler's log records are timed by the wall clock.
STARTED_AT = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC).timestamp()


def decision(second: float, recommendation: int, desired: int, limited_by: str = "None", pool: str = "video") -> str:
    """One "decision" record as the scaler logs it (Powertools JSON), `second` s after the start."""
    at = datetime.fromtimestamp(STARTED_AT + second, UTC)
    stamp = at.strftime("%Y-%m-%d %H:%M:%S,") + f"{at.microsecond // 1000:03d}+0000"
    record = {"level": "INFO", "message": "decision", "timestamp": stamp, "pool": pool, "current": desired}
    record |= {"desired": desired, "recommendation": recommendation, "limited_by": limited_by, "applied": False}
    return json.dumps(record)


@pytest.fixture
def timeline() -> Timeline:
    line = Timeline(scale_down_window=15)
    line.add(0, status(0, 0, 0, [], []))
    line.burst_at = 3
    line.add(3, status(0, 0, 40, [], []))
    line.add(6, status(3, 1, 35, ["InService", "Pending:Wait", "Pending"], []))
    line.add(20, status(3, 3, 0, ["InService"] * 3, ["video-pro-5-abc"]))
    line.add(30, status(3, 3, 0, ["InService"] * 3, ["video-pro-5-abc"]))
    line.add(40, status(1, 1, 0, ["InService", "Terminating:Wait", "Terminating:Wait"], ["video-pro-5-abc"]))
    log = [
        decision(-2.0, 0, 0),  # before the demo started: not on its timeline
        decision(4.0, 3, 3),
        decision(5.0, 5, 3, "MaxSize"),  # a recommendation above max_size: drawn within the axis too
        "not json: a worker's plain line",
        json.dumps({"message": "tick stood down", "pool": "video"}),
        decision(18.5, 0, 3, "ScaleDownStabilized"),
        decision(19.5, 0, 3, "ScaleDownStabilized"),
        decision(33.5, 0, 2, "ScaleDownStabilized"),  # lowered to the window's highest: the fleet steps down
        decision(34.5, 0, 1, "MinSize"),  # the window no longer holds anything above the need
        decision(20.0, 0, 3, "ScaleDownStabilized", pool="ai"),
    ]
    line.read_decisions(log, STARTED_AT)
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
    fleet_labels = set(fleet.get_legend_handles_labels()[1])
    backlog_labels = backlog.get_legend_handles_labels()[1]
    window = timeline.window_label()
    assert {"in service", "desired", "burst", "drain begins", DEMO_BOOTING_LABEL, RECOMMENDATION_LABEL} <= fleet_labels
    assert window in fleet_labels and "15 s" in window and "highest recommendation" in window
    assert {"backlog", "burst", "dead letter"} <= set(backlog_labels)
    # The legends sit outside the axes, so they hide no line.
    for axis in (backlog, fleet):
        legend = axis.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 >= axis.get_window_extent().x1 - 1
    assert timeline.drains["video"] == [40, 40] and timeline.dead_letters["video"] == [20]
    # Booting: launched (Pending, Pending:Wait), not yet in service, stacked on those in service.
    assert timeline.booting["video"] == [0, 0, 2, 0, 0, 0]
    (booting,) = [c for c in fleet.collections if c.get_label() == DEMO_BOOTING_LABEL]
    assert any(path.contains_point((10, 2)) for path in booting.get_paths())
    assert not any(path.contains_point((10, 0.5)) for path in booting.get_paths())
    # The window from the ticks it limited to the first it did not, at the ticks' own times.
    assert timeline.scale_down_spans("video") == [(pytest.approx(18.5), pytest.approx(34.5))]
    assert [tick.recommendation for tick in timeline.ticks["video"]] == [3, 5, 0, 0, 0, 0]
    (recommendation,) = [ln for ln in fleet.get_lines() if ln.get_label() == RECOMMENDATION_LABEL]
    assert list(recommendation.get_ydata()) == [3, 5, 0, 0, 0, 0]
    assert fleet.get_ylim() == (0, 5.5)
    plt.close(figure)


def test_a_window_still_in_effect_at_the_last_tick_ends_there(timeline: Timeline) -> None:
    assert timeline.scale_down_spans("ai") == [(pytest.approx(20.0), pytest.approx(20.0))]
    assert timeline.scale_down_spans("messaging") == []


def run(policy: str, wait: float, seconds: float, peak: int = 50) -> RunResult:
    # A burst: 3 booting then in service; desired falls to 1 while 3 protected instances stay.
    series = [
        SeriesPoint(0.0, 0, 0, 0, 0.0),
        SeriesPoint(60.0, peak, 0, 3, 30.0, in_flight=0, booting=3),
        SeriesPoint(120.0, 20, 3, 3, 0.0, in_flight=12),
        SeriesPoint(180.0, 0, 3, 1, 0.0, in_flight=8, protected_surplus=2),
        SeriesPoint(240.0, 0, 1, 1, 0.0),
    ]
    return RunResult("burst", policy, {"wait_p95": wait, "instance_seconds": seconds}, series, 0.1)


def filled(axis: Axes, label: str, point: tuple[float, float]) -> bool:
    """Whether the area labelled `label` covers `point` (data coordinates)."""
    (fill,) = [c for c in axis.collections if c.get_label() == label]
    return any(path.contains_point(point) for path in fill.get_paths())


def test_given_a_scenarios_runs_when_drawn_then_ours_and_the_winner_are_marked_on_shared_axes_from_zero() -> None:
    # The last column's backlog is the highest: the shared scale must still show all of it.
    runs = [run("queue-scaler", 120, 7200), run("keda", 300, 3600), run("fixed", 20, 14400, peak=900)]
    figure = runs_figure(runs, "burst", max_size=10, winner="keda")
    backlog_row, fleet_row = figure.axes[:3], figure.axes[3:6]
    assert [a.get_title() for a in backlog_row] == [
        "queue-scaler (ours)\nwait p95 120 s, 2.0 inst-h",
        "keda (winner)\nwait p95 300 s, 1.0 inst-h",
        "fixed\nwait p95 20 s, 4.0 inst-h",
    ]
    # The winner's two panels are framed in the winner's colour, and only they.
    framed = [a for a in figure.axes[:6] if a.spines["top"].get_edgecolor() == to_rgba(WINNER_COLOR)]
    assert framed == [backlog_row[1], fleet_row[1]]
    suptitle = figure.get_suptitle()
    assert suptitle.startswith("burst: winner keda (framed)\n") and WINNER_RULE in suptitle
    # Shared axes from zero: every panel of a row shows the same ranges, starting at 0.
    assert len({a.get_ylim() for a in backlog_row}) == 1 and len({a.get_ylim() for a in fleet_row}) == 1
    assert len({a.get_xlim() for a in figure.axes[:6]}) == 1
    assert all(a.get_xlim()[0] == 0 and a.get_ylim()[0] == 0 for a in figure.axes[:6])
    assert backlog_row[0].get_ylim()[1] >= 900 and fleet_row[0].get_ylim()[1] >= 10
    assert backlog_row[0].get_xlim()[1] >= 4
    # The backlog is what the policies scale on: visible + in flight.
    (line,) = [ln for ln in backlog_row[0].get_lines() if ln.get_label() == "visible + in flight"]
    assert list(line.get_ydata()) == [0, 50, 32, 8, 0]
    # Booting instances stack on those in service (3 from 1 min to 2); the protected ones fill from
    # desired (1) up to those in service (3) from 3 min to 4, and nothing where in service = desired.
    assert filled(fleet_row[0], BOOTING_LABEL, (1.5, 1.5)) and not filled(fleet_row[0], BOOTING_LABEL, (2.5, 1.5))
    assert filled(fleet_row[0], PROTECTED_LABEL, (3.5, 2.0)) and not filled(fleet_row[0], PROTECTED_LABEL, (3.5, 0.5))
    assert not filled(fleet_row[0], PROTECTED_LABEL, (2.5, 2.0))
    legend = figure.legends[0]
    labels = {t.get_text() for t in legend.get_texts()}
    assert {"visible + in flight", "in service", "desired", "max size 10", BOOTING_LABEL, PROTECTED_LABEL} <= labels
    assert "in service above desired" in PROTECTED_LABEL
    assert fleet_row[0].get_ylabel() == "instances" and backlog_row[0].get_ylabel() == "messages"
    assert_no_text_overlaps(figure)
    plt.close(figure)


def texts(figure: Figure) -> list[Text]:
    """Every label a reader reads: titles, axis labels, the legends' entries and the figure's title."""
    found: list[Text] = [figure._suptitle] if figure._suptitle is not None else []
    for axis in figure.axes:
        if axis.get_visible():
            found += [axis.title, axis.xaxis.label, axis.yaxis.label, *axis.texts]
    for legend in figure.legends:
        found += legend.get_texts()
    return [t for t in found if t.get_text()]


def assert_no_text_overlaps(figure: Figure) -> None:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(figure)]
    page = figure.bbox
    for name, box in boxes:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, name
    for index, (name, box) in enumerate(boxes):
        for other, other_box in boxes[index + 1 :]:
            assert not box.overlaps(other_box), (name, other)


def test_given_every_scenario_when_drawn_then_each_panel_rings_its_winner_and_no_label_overlaps() -> None:
    names = ("seed-burst", "stage-500", "steady-poisson", "azure-functions-day", "priority-mix")
    # Ours and keda on the same spot: text labels beside the points would overlap there.
    scenarios = {
        name: [run("queue-scaler", 120, 7200), run("keda", 121, 7210), run("oracle", 60, 3000)] for name in names
    }
    winners = dict.fromkeys(names, "keda") | {"stage-500": "queue-scaler"}
    figure = tradeoff_figure(scenarios, winners)
    visible = [a for a in figure.axes if a.get_visible()]
    assert [a.get_title() for a in visible] == [f"{name}\nwinner: {winners[name]}" for name in names]
    for axis, name in zip(visible, names, strict=True):
        assert axis.get_xlabel() == "instance-hours" and axis.get_ylabel() == "wait p95 (s)"
        assert axis.get_xlim()[0] == 0 and axis.get_ylim()[0] == 0
        # Every point inside the panel, none on its frame.
        points = [tuple(c.get_offsets()[0]) for c in axis.collections]
        assert all(0 <= x < axis.get_xlim()[1] and 0 <= y < axis.get_ylim()[1] for x, y in points)
        # The ring sits on the winner's point.
        (ring,) = [c for c in axis.collections if c.get_label() == WINNER_LABEL]
        (point,) = [c for c in axis.collections if c.get_label() == winners[name]]
        assert list(ring.get_offsets()[0]) == list(point.get_offsets()[0])
        assert not axis.texts  # no label beside a point: the legend names them
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["queue-scaler", "keda", "oracle", WINNER_LABEL]
    assert WINNER_RULE in figure.get_suptitle()
    assert_no_text_overlaps(figure)
    plt.close(figure)

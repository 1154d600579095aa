"""The demo's timeline per pool: what the local cloud's status showed, second by second, as a picture.

Two panels sharing the time axis: the backlog on its own (messages), and the instances (in service,
booting on top of them, desired, and the scaler's recommendation, integer ticks) below, with marks
for the burst, the dead letters, the drains and the scale-down window, so that a reader sees cause
and effect without reading two scales off one plot.

The window is drawn from the scaler's own decisions, each at the time its tick made it (the
"decision" records the scaler logs every tick, read from the local cloud's log after the run). The
status's `scaler.last` cannot say it: it is the last tick of the last finished invocation, seen
seconds after the tick, and one tick of several per invocation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable

    from matplotlib.figure import Figure

#: Instances launched, not yet in service, stacked on those in service.
BOOTING_LABEL = "booting (launched, not yet in service;\nits worker starts in Pending:Wait)"
RECOMMENDATION_LABEL = "recommendation (the need, before the window)"
#: The limit a decision names when the scale-down window kept it above its recommendation.
STABILIZED = "ScaleDownStabilized"
#: Powertools' log timestamp: "2026-12-07 05:30:05,325+0000".
LOG_TIME = "%Y-%m-%d %H:%M:%S,%f%z"


class Tick(NamedTuple):
    """One of the scaler's decisions for a pool: when (seconds since the demo started) and what."""

    t: float
    recommendation: int
    desired: int
    limited_by: str


@dataclass
class Timeline:
    """Samples of the local cloud's status, per pool, and the moments worth marking."""

    #: The scaler's scale-down stabilization window (the local cloud's compressed one).
    scale_down_window: float = 0.0
    t: list[float] = field(default_factory=list)
    backlog: dict[str, list[int]] = field(default_factory=dict)
    desired: dict[str, list[int]] = field(default_factory=dict)
    in_service: dict[str, list[int]] = field(default_factory=dict)
    #: Launched and not yet in service (Pending, Pending:Wait, Pending:Proceed): the launch hook holds
    #: an instance in Pending:Wait until its worker is healthy, so these may already take jobs.
    booting: dict[str, list[int]] = field(default_factory=dict)
    burst_at: float | None = None
    #: Per pool: when each dead letter was first seen, and when each drain (an instance entering
    #: Terminating:Wait) began.
    dead_letters: dict[str, list[float]] = field(default_factory=dict)
    drains: dict[str, list[float]] = field(default_factory=dict)
    #: Per pool: the scaler's decisions, in tick order (`read_decisions`).
    ticks: dict[str, list[Tick]] = field(default_factory=dict)
    _seen_dead: set[str] = field(default_factory=set)
    _seen_draining: set[str] = field(default_factory=set)

    def add(self, t: float, status: dict[str, Any]) -> None:
        self.t.append(t)
        for pool, state in status["pools"].items():
            backlog = sum(q["visible"] + q["in_flight"] for q in status["queues"].values() if q["pool"] == pool)
            self.backlog.setdefault(pool, []).append(backlog)
            self.desired.setdefault(pool, []).append(state["desired"])
            self.in_service.setdefault(pool, []).append(state["in_service"])
            self.booting.setdefault(pool, []).append(
                sum(1 for instance in state["instances"] if instance["state"].startswith("Pending"))
            )
            self.dead_letters.setdefault(pool, [])
            self.drains.setdefault(pool, [])
            for instance in state["instances"]:
                if instance["state"].startswith("Terminating") and instance["id"] not in self._seen_draining:
                    self._seen_draining.add(instance["id"])
                    self.drains[pool].append(t)
        for job in status.get("dead_lettered_jobs", []):
            pool = job.split("-", 1)[0]  # the demo's job ids start with their pool
            if job not in self._seen_dead and pool in self.dead_letters:
                self._seen_dead.add(job)
                self.dead_letters[pool].append(t)

    def read_decisions(self, lines: Iterable[str], started_at: float) -> None:
        """Take the scaler's "decision" records from log `lines` (JSON, one a line; others are
        skipped), timed from `started_at` (epoch seconds: when the demo started)."""
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("message") != "decision" or "limited_by" not in record:
                continue
            t = datetime.strptime(record["timestamp"], LOG_TIME).timestamp() - started_at
            if t >= 0:
                tick = Tick(t, record["recommendation"], record["desired"], record["limited_by"])
                self.ticks.setdefault(record["pool"], []).append(tick)
        for ticks in self.ticks.values():
            ticks.sort()

    def scale_down_spans(self, pool: str) -> list[tuple[float, float]]:
        """When the scale-down window was in effect: from a tick whose decision it limited (desired kept
        at the highest recommendation of the window, above the tick's own) to the next tick it did not
        limit, as (start, end) spans."""
        spans: list[tuple[float, float]] = []
        start: float | None = None
        ticks = self.ticks.get(pool, [])
        for tick in ticks:
            held = tick.limited_by == STABILIZED
            if held and start is None:
                start = tick.t
            elif not held and start is not None:
                spans.append((start, tick.t))
                start = None
        if start is not None:
            spans.append((start, ticks[-1].t))
        return spans

    def figure(self, pool: str) -> Figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        figure, (backlog_axis, fleet_axis) = plt.subplots(
            2, 1, figsize=(9, 6), sharex=True, height_ratios=(1, 1.3), layout="constrained"
        )
        backlog_axis.plot(self.t, self.backlog[pool], color="tab:gray", label="backlog")
        backlog_axis.set_ylabel("messages (visible + in flight)")
        backlog_axis.set_title(f"queue-scaler demo: pool {pool}")
        in_service = self.in_service[pool]
        launched = [up + booting for up, booting in zip(in_service, self.booting[pool], strict=True)]
        fleet_axis.fill_between(
            self.t, in_service, launched, step="post", color="tab:orange", alpha=0.45, linewidth=0, label=BOOTING_LABEL
        )
        fleet_axis.step(self.t, in_service, where="post", color="tab:green", linewidth=2, label="in service")
        fleet_axis.step(
            self.t, self.desired[pool], where="post", color="tab:blue", linestyle="--", linewidth=1.5, label="desired"
        )
        ticks = self.ticks.get(pool, [])
        if ticks:
            fleet_axis.step(
                [tick.t for tick in ticks],
                [tick.recommendation for tick in ticks],
                where="post",
                color="tab:purple",
                linestyle=":",
                linewidth=1.5,
                label=RECOMMENDATION_LABEL,
            )
        fleet_axis.set_ylabel("instances")
        fleet_axis.set_xlabel("seconds since the demo started")
        fleet_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        recommended = [tick.recommendation for tick in ticks]
        fleet_axis.set_ylim(bottom=0, top=max([*self.desired[pool], *launched, *recommended, 1]) + 0.5)
        for axis in (backlog_axis, fleet_axis):
            axis.grid(alpha=0.3)
            if self.burst_at is not None:
                axis.axvline(self.burst_at, color="tab:orange", linewidth=1.5, label="burst")
            for index, span in enumerate(self.scale_down_spans(pool)):
                axis.axvspan(*span, color="tab:purple", alpha=0.12, label=self.window_label() if index == 0 else None)
        if self.dead_letters[pool]:
            backlog_axis.plot(
                self.dead_letters[pool], [0] * len(self.dead_letters[pool]), "rx", markersize=8, label="dead letter"
            )
        if self.drains[pool]:
            fleet_axis.plot(self.drains[pool], [0.1] * len(self.drains[pool]), "kv", markersize=7, label="drain begins")
        # Outside the plotting area: a legend must never hide a line.
        for axis in (backlog_axis, fleet_axis):
            axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", borderaxespad=0)
        made: Figure = figure
        return made

    def window_label(self) -> str:
        """What the band means: the window lowers desired only to the highest recommendation of its
        last seconds, so the fleet may step down inside the band, following that highest one."""
        window = f"{self.scale_down_window:g} s"
        return (
            f"scale-down window in effect ({window}): desired kept at\nthe highest recommendation of the last {window}"
        )

    def plot(self, out_dir: Path) -> list[Path]:
        """Write out_dir/demo-<pool>.png for every pool; returns the paths."""
        import matplotlib.pyplot as plt

        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for pool in self.backlog:
            figure = self.figure(pool)
            path = out_dir / f"demo-{pool}.png"
            figure.savefig(path, dpi=100)
            plt.close(figure)
            paths.append(path)
        return paths

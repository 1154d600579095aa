"""The demo's timeline per pool: what the local cloud's status showed, second by second, as a picture.

Two panels sharing the time axis: the backlog on its own (messages), and the instances (desired and
in service, integer ticks) below, with marks for the burst, the dead letters, the drains and the
scale-down window, so that a reader sees cause and effect without reading two scales off one plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Timeline:
    """Samples of the local cloud's status, per pool, and the moments worth marking."""

    #: The scaler's scale-down stabilization window (the local cloud's compressed one).
    scale_down_window: float = 0.0
    t: list[float] = field(default_factory=list)
    backlog: dict[str, list[int]] = field(default_factory=dict)
    desired: dict[str, list[int]] = field(default_factory=dict)
    in_service: dict[str, list[int]] = field(default_factory=dict)
    burst_at: float | None = None
    #: Per pool: when each dead letter was first seen, and when each drain (an instance entering
    #: Terminating:Wait) began.
    dead_letters: dict[str, list[float]] = field(default_factory=dict)
    drains: dict[str, list[float]] = field(default_factory=dict)
    #: Per pool: the samples at which the scaler's last decision was held by the scale-down window.
    held: dict[str, list[float]] = field(default_factory=dict)
    _seen_dead: set[str] = field(default_factory=set)
    _seen_draining: set[str] = field(default_factory=set)

    def add(self, t: float, status: dict[str, Any]) -> None:
        self.t.append(t)
        for pool, state in status["pools"].items():
            backlog = sum(q["visible"] + q["in_flight"] for q in status["queues"].values() if q["pool"] == pool)
            self.backlog.setdefault(pool, []).append(backlog)
            self.desired.setdefault(pool, []).append(state["desired"])
            self.in_service.setdefault(pool, []).append(state["in_service"])
            self.dead_letters.setdefault(pool, [])
            self.drains.setdefault(pool, [])
            self.held.setdefault(pool, [])
            for instance in state["instances"]:
                if instance["state"].startswith("Terminating") and instance["id"] not in self._seen_draining:
                    self._seen_draining.add(instance["id"])
                    self.drains[pool].append(t)
        for outcome in status.get("scaler", {}).get("last", []):
            decision = outcome.get("decision") or {}
            if decision.get("limited_by") == "ScaleDownStabilized" and outcome["pool"] in self.held:
                self.held[outcome["pool"]].append(t)
        for job in status.get("dead_lettered_jobs", []):
            pool = job.split("-", 1)[0]  # the demo's job ids start with their pool
            if job not in self._seen_dead and pool in self.dead_letters:
                self._seen_dead.add(job)
                self.dead_letters[pool].append(t)

    def scale_down_spans(self, pool: str) -> list[tuple[float, float]]:
        """When the scale-down window held the pool above what its backlog needed: consecutive samples
        whose decision was limited by ScaleDownStabilized, as (start, end) spans."""
        spans: list[tuple[float, float]] = []
        step = max((b - a for a, b in zip(self.t, self.t[1:], strict=False)), default=1.0)
        for t in self.held.get(pool, []):
            if spans and t - spans[-1][1] <= 1.5 * step:
                spans[-1] = (spans[-1][0], t)
            else:
                spans.append((t, t))
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
        fleet_axis.step(self.t, self.in_service[pool], where="post", color="tab:green", linewidth=2, label="in service")
        fleet_axis.step(
            self.t, self.desired[pool], where="post", color="tab:blue", linestyle="--", linewidth=1.5, label="desired"
        )
        fleet_axis.set_ylabel("instances")
        fleet_axis.set_xlabel("seconds since the demo started")
        fleet_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        fleet_axis.set_ylim(bottom=0, top=max([*self.desired[pool], *self.in_service[pool], 1]) + 0.5)
        for axis in (backlog_axis, fleet_axis):
            axis.grid(alpha=0.3)
            if self.burst_at is not None:
                axis.axvline(self.burst_at, color="tab:orange", linewidth=1.5, label="burst")
            for index, span in enumerate(self.scale_down_spans(pool)):
                window = f"held by the scale-down window ({self.scale_down_window:g} s)" if index == 0 else None
                axis.axvspan(*span, color="tab:purple", alpha=0.12, label=window)
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

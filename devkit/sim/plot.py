"""PNG plots of a scenario's runs, made to be read at a glance.

Small multiples: one column per policy, every panel on the same axes, the backlog above and the
instances below (with the pools' max size drawn), each column titled with its wait p95 and
instance-hours. And one wait-vs-cost scatter per scenario, every policy a labelled point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from devkit.sim.runner import RunResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot() -> ModuleType:
    import matplotlib

    # No display on CI machines or in a Lambda-like shell: render straight to files.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _time_unit(runs: Sequence[RunResult]) -> tuple[str, float]:
    longest = max((run.series[-1][0] for run in runs if run.series), default=0.0)
    return ("h", 3600.0) if longest > 3 * 3600 else ("min", 60.0)


def panel_title(run: RunResult) -> str:
    """A policy's column title: its name and the two figures it is judged by."""
    wait = run.metrics.get("wait_p95")
    wait_text = "-" if wait is None else f"{wait:,.0f} s"
    return f"{run.policy}\nwait p95 {wait_text}, {run.metrics['instance_seconds'] / 3600:,.1f} inst-h"


def runs_figure(runs: Sequence[RunResult], title: str, max_size: int | None = None) -> Figure:
    """Two rows (backlog; instances in service and desired) by one column per policy, shared axes."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    unit, scale = _time_unit(runs)
    columns = max(1, len(runs))
    figure, axes = plt.subplots(
        2, columns, figsize=(3.2 * columns + 1, 6), sharex=True, sharey="row", squeeze=False, layout="constrained"
    )
    for column, run in enumerate(runs):
        backlog, fleet = axes[0][column], axes[1][column]
        times = [p[0] / scale for p in run.series]
        backlog.plot(times, [p[1] for p in run.series], color="tab:gray", linewidth=1)
        fleet.step(
            times, [p[2] for p in run.series], where="post", color="tab:green", linewidth=1.2, label="in service"
        )
        fleet.step(
            times,
            [p[3] for p in run.series],
            where="post",
            color="tab:blue",
            linestyle="--",
            linewidth=1,
            label="desired",
        )
        if max_size is not None:
            fleet.axhline(max_size, color="tab:red", linestyle=":", linewidth=1, label=f"max size {max_size}")
        backlog.set_title(panel_title(run), fontsize="medium")
        fleet.set_xlabel(f"time ({unit})")
        fleet.yaxis.set_major_locator(MaxNLocator(integer=True))
        for axis in (backlog, fleet):
            axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("visible messages")
    axes[1][0].set_ylabel("instances")
    axes[1][0].legend(loc="upper right", fontsize="small")
    figure.suptitle(title)
    made: Figure = figure
    return made


def tradeoff_figure(scenarios: Mapping[str, Sequence[RunResult]]) -> Figure:
    """One panel per scenario: each policy's wait p95 against its instance-hours (lower left is better)."""
    plt = _pyplot()
    columns = min(4, max(1, len(scenarios)))
    rows = -(-len(scenarios) // columns) or 1
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.2 * rows), squeeze=False, layout="constrained")
    flat = [axis for row in axes for axis in row]
    for axis, (scenario, runs) in zip(flat, scenarios.items(), strict=False):
        for run in runs:
            cost = run.metrics["instance_seconds"] / 3600
            wait = run.metrics.get("wait_p95") or 0.0
            axis.scatter([cost], [wait], s=30)
            axis.annotate(run.policy, (cost, wait), textcoords="offset points", xytext=(4, 3), fontsize="x-small")
        axis.set_title(scenario, fontsize="medium")
        axis.set_xlabel("instance-hours")
        axis.set_ylabel("wait p95 (s)")
        axis.grid(alpha=0.3)
    for axis in flat[len(scenarios) :]:
        axis.set_visible(False)
    figure.suptitle("wait against cost, every policy (lower left is better)")
    made: Figure = figure
    return made


def save(figure: Figure, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def plot_runs(runs: Sequence[RunResult], path: Path, title: str, max_size: int | None = None) -> Path:
    """Write the small multiples of `runs` to `path`; returns it."""
    return save(runs_figure(runs, title, max_size), path)

"""PNG plots of a scenario's runs, made to be read at a glance.

Small multiples: one column per policy, every panel on the same axes from zero, the backlog above
(visible + in flight: what every policy scales on) and the instances below (in service, booting on
top of them, desired, the instances protected from scale-in that keep the group above its desired
capacity, and the pools' max size), each column titled with its wait p95 and instance-hours,
queue-scaler's and the winner's columns marked. And one wait-vs-cost scatter per scenario: every
policy with its own marker, named once in the figure's legend (no label can overlap a point or
another label), queue-scaler a star, the winner ringed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from devkit.sim.policies import ORACLE, OURS, PEERS, REACTIVE_BOUND
from devkit.sim.runner import RunResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Where the winner's rule is said, on every figure that marks a winner.
WINNER_RULE = f"the winner: {OURS} where it meets the benchmark's goal, else the better dynamic peer P"
#: Each policy's marker in wait-vs-cost: its colour and shape, the same on every panel. Ours and the
#: two bounds have their own; the peers take the next of `_PEER_MARKERS` in the registry's order, so a new
#: peer gets one without an edit here.
_PEER_MARKERS = (
    ("tab:blue", "o", 60),
    ("tab:cyan", "s", 55),
    ("tab:purple", "D", 50),
    ("tab:brown", "P", 70),
    ("tab:green", "v", 60),
    ("tab:olive", "^", 60),
    ("tab:pink", "<", 60),
    ("tab:orange", ">", 60),
)
MARKERS = {
    OURS: ("tab:red", "*", 220),
    **dict(zip(PEERS, itertools.cycle(_PEER_MARKERS), strict=False)),
    REACTIVE_BOUND: ("tab:gray", "d", 60),
    ORACLE: ("tab:gray", "X", 70),
}
#: The winner's marks: a ring in wait-vs-cost, a frame around its columns in the small multiples.
WINNER_LABEL = "winner (ringed)"
WINNER_COLOR = "goldenrod"
#: The instances a policy pays for beyond those in service, as the small multiples name them.
BOOTING_LABEL = "booting (launched, not yet in service)"
PROTECTED_LABEL = (
    "protected from scale-in: in service above desired\n(the group cannot take an instance whose worker holds a job)"
)


def _pyplot() -> ModuleType:
    import matplotlib

    # No display on CI machines or in a Lambda-like shell: render straight to files.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _time_unit(runs: Sequence[RunResult]) -> tuple[str, float]:
    longest = max((run.series[-1][0] for run in runs if run.series), default=0.0)
    return ("h", 3600.0) if longest > 3 * 3600 else ("min", 60.0)


def panel_title(run: RunResult, winner: str | None = None) -> str:
    """A policy's column title: its name (marked when it is ours or the winner) and the two figures
    it is judged by."""
    wait = run.metrics.get("wait_p95")
    wait_text = "-" if wait is None else f"{wait:,.0f} s"
    marks = [mark for mark, holds in (("ours", run.policy == OURS), ("winner", run.policy == winner)) if holds]
    name = f"{run.policy} ({', '.join(marks)})" if marks else run.policy
    return f"{name}\nwait p95 {wait_text}, {run.metrics['instance_seconds'] / 3600:,.1f} inst-h"


def _from_zero(axis: Axes) -> None:
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)


def _frame(axis: Axes, color: str) -> None:
    for spine in axis.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(2.5)


def runs_figure(
    runs: Sequence[RunResult], title: str, max_size: int | None = None, winner: str | None = None
) -> Figure:
    """Two rows (backlog; instances) by one column per policy, shared axes from zero; the winner's
    column framed, ours and the winner named in their titles; one legend under the panels."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    unit, scale = _time_unit(runs)
    columns = max(1, len(runs))
    figure, axes = plt.subplots(
        2, columns, figsize=(3.2 * columns + 1, 7), sharex=True, sharey="row", squeeze=False, layout="constrained"
    )
    for column, run in enumerate(runs):
        backlog, fleet = axes[0][column], axes[1][column]
        points = run.series
        times = [p.t / scale for p in points]
        backlog.fill_between(
            times, [p.visible for p in points], color="tab:gray", alpha=0.3, linewidth=0, label="visible (waiting)"
        )
        backlog.plot(
            times, [p.visible + p.in_flight for p in points], color="black", linewidth=1, label="visible + in flight"
        )
        in_service = [p.in_service for p in points]
        desired = [p.desired for p in points]
        fleet.fill_between(
            times,
            in_service,
            [p.in_service + p.booting for p in points],
            step="post",
            color="tab:orange",
            alpha=0.45,
            linewidth=0,
            label=BOOTING_LABEL,
        )
        # The top of those in service: summed over pools, one pool's surplus must not hide behind
        # another's shortfall, so the band is drawn from the recorded surplus, not from desired.
        fleet.fill_between(
            times,
            [p.in_service - p.protected_surplus for p in points],
            in_service,
            step="post",
            color="tab:red",
            alpha=0.3,
            linewidth=0,
            label=PROTECTED_LABEL,
        )
        fleet.step(times, in_service, where="post", color="tab:green", linewidth=1.2, label="in service")
        fleet.step(times, desired, where="post", color="tab:blue", linestyle="--", linewidth=1, label="desired")
        if max_size is not None:
            fleet.axhline(max_size, color="tab:red", linestyle=":", linewidth=1, label=f"max size {max_size}")
        backlog.set_title(
            panel_title(run, winner), fontsize="medium", fontweight="bold" if run.policy in (OURS, winner) else None
        )
        fleet.set_xlabel(f"time ({unit})")
        fleet.yaxis.set_major_locator(MaxNLocator(integer=True))
        for axis in (backlog, fleet):
            axis.grid(alpha=0.3)
            if run.policy == winner:
                _frame(axis, WINNER_COLOR)
    # Only once every column is drawn: setting a limit stops autoscaling, and the shared limits must
    # cover every column's data.
    for axis in axes.flat:
        _from_zero(axis)
    axes[0][0].set_ylabel("messages")
    axes[1][0].set_ylabel("instances")
    handles, labels = _legend_entries(axes[0][0], axes[1][0])
    figure.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    figure.suptitle(f"{title}: winner {winner} (framed)\n{WINNER_RULE}" if winner else title)
    made: Figure = figure
    return made


def _legend_entries(*axes: Axes) -> tuple[list[object], list[str]]:
    """Every labelled artist of `axes`, each label once, in order."""
    entries: dict[str, object] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    return list(entries.values()), list(entries)


def tradeoff_figure(scenarios: Mapping[str, Sequence[RunResult]], winners: Mapping[str, str] | None = None) -> Figure:
    """One panel per scenario: each policy's wait p95 against its instance-hours (lower left is
    better), axes from zero, each policy's marker named once in the legend, the winner ringed."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    columns = min(4, max(1, len(scenarios)))
    rows = -(-len(scenarios) // columns) or 1
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns, 3.2 * rows + 0.8), squeeze=False, layout="constrained"
    )
    flat = [axis for row in axes for axis in row]
    for axis, (scenario, runs) in zip(flat, scenarios.items(), strict=False):
        winner = (winners or {}).get(scenario)
        costs = [run.metrics["instance_seconds"] / 3600 for run in runs]
        waits = [run.metrics.get("wait_p95") or 0.0 for run in runs]
        for run, cost, wait in zip(runs, costs, waits, strict=True):
            color, marker, size = MARKERS.get(run.policy, ("black", "o", 40))
            if run.policy == winner:
                axis.scatter(
                    [cost],
                    [wait],
                    s=size + 260,
                    facecolors="none",
                    edgecolors=WINNER_COLOR,
                    linewidths=2.5,
                    zorder=2,
                    clip_on=False,
                    label=WINNER_LABEL,
                )
            axis.scatter(
                [cost],
                [wait],
                s=size,
                color=color,
                marker=marker,
                edgecolors="black",
                linewidths=0.5,
                zorder=3,
                alpha=0.9,
                clip_on=False,  # a wait of 0 sits on the axis, whole
                label=run.policy,
            )
        # From zero, with room above and right so that no marker sits on the frame.
        axis.set_xlim(0, max(costs, default=0.0) * 1.15 or 1.0)
        axis.set_ylim(0, max(waits, default=0.0) * 1.15 or 1.0)
        axis.set_title(f"{scenario}\nwinner: {winner}" if winner else scenario, fontsize="medium")
        axis.set_xlabel("instance-hours")
        axis.set_ylabel("wait p95 (s)")
        axis.grid(alpha=0.3)
    for axis in flat[len(scenarios) :]:
        axis.set_visible(False)
    handles, labels = _legend_entries(*flat[: len(scenarios)])
    if WINNER_LABEL in labels:
        # The ring's own size would dwarf the legend: a proxy of marker size, and last.
        del handles[labels.index(WINNER_LABEL)]
        labels.remove(WINNER_LABEL)
        ring = Line2D([], [], linestyle="none", marker="o", markersize=11, markerfacecolor="none")
        ring.set(markeredgecolor=WINNER_COLOR, markeredgewidth=2.5)
        handles.append(ring)
        labels.append(WINNER_LABEL)
    figure.legend(
        handles, labels, loc="outside lower center", ncols=min(len(labels), 2 * columns) or 1, fontsize="small"
    )
    subtitle = f"\n{WINNER_RULE}" if winners else ""
    figure.suptitle(f"wait against cost, every policy (lower left is better){subtitle}")
    made: Figure = figure
    return made


def save(figure: Figure, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def plot_runs(
    runs: Sequence[RunResult], path: Path, title: str, max_size: int | None = None, winner: str | None = None
) -> Path:
    """Write the small multiples of `runs` to `path`; returns it."""
    return save(runs_figure(runs, title, max_size, winner), path)

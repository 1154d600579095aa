"""PNG plots of a scenario's runs: backlog, capacity and wait over time, one line per policy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from devkit.sim.runner import RunResult


def plot_runs(runs: Sequence[RunResult], path: Path, title: str) -> Path:
    """Write one PNG with three stacked panels sharing the time axis; returns its path."""
    import matplotlib

    # No display on CI machines or in a Lambda-like shell: render straight to files.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = max((run.series[-1][0] for run in runs if run.series), default=0.0)
    hours = longest > 3 * 3600
    unit, scale = ("h", 3600.0) if hours else ("min", 60.0)
    figure, (backlog, capacity, wait) = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True)
    for run in runs:
        times = [p[0] / scale for p in run.series]
        backlog.plot(times, [p[1] for p in run.series], label=run.policy, linewidth=1)
        capacity.plot(times, [p[2] for p in run.series], label=run.policy, linewidth=1)
        wait.plot(times, [p[4] for p in run.series], label=run.policy, linewidth=1)
    backlog.set_ylabel("visible messages")
    capacity.set_ylabel("instances in service")
    wait.set_ylabel("oldest queued job (s)")
    wait.set_xlabel(f"time ({unit})")
    backlog.legend(loc="upper right", fontsize="small")
    backlog.set_title(title)
    for axis in (backlog, capacity, wait):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path

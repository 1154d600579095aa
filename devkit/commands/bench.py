"""`queue-scaler bench [--json]`: every built-in and held-out scenario under every policy, with our
ratios, the two sets reported apart; `--write-doc PATH` writes the result tables into the doc.
`--warm-pool STATE`: instead, each scenario with and without a warm pool under ours and the dynamic
peers, wait p95 and cost side by side (devkit/sim/bench.py, `run_warm`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

from devkit.sim.scenario import WarmState


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler bench` (devkit/cli.py names the command and its help)."""
    parser.add_argument("--json", action="store_true", help="print every scenario's metrics as JSON")
    parser.add_argument("--plots", metavar="DIR", default="out/bench", help="where PNGs go (default out/bench)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG")
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="run only these scenarios (repeatable); the feature scenarios (schedules, forecast) run only when named",
    )
    parser.add_argument(
        "--write-doc",
        metavar="PATH",
        type=Path,
        help="replace the tables between PATH's bench-results markers (make bench: docs/benchmark.md); "
        "needs the full run, so not with --scenario",
    )
    parser.add_argument(
        "--warm-pool",
        choices=get_args(WarmState),
        help="compare each scenario cold and with a warm pool in this state on every pool (AWS's default "
        "size), under ours and the dynamic peers: wait p95 and cost (storage included); not with --write-doc",
    )
    parser.add_argument(
        "--warm-reuse",
        action="store_true",
        help="with --warm-pool: scaled-in instances return to the warm pool (ReuseOnScaleIn) instead of terminating",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from devkit import output
    from devkit.sim.bench import all_names, known_names, run_bench, winner
    from devkit.sim.doc import BEGIN, write_doc
    from devkit.sim.plot import plot_runs, save, tradeoff_figure
    from devkit.sim.policies import POLICIES
    from devkit.sim.report import print_bench
    from devkit.sim.scenario import load_scenario

    names = args.scenario or all_names()
    unknown = sorted(set(names) - set(known_names()))
    if unknown:
        print(f"queue-scaler bench: unknown scenario(s) {unknown}; known: {known_names()}", file=sys.stderr)
        return 2
    if args.write_doc is not None:
        if args.scenario:
            print("queue-scaler bench: --write-doc needs every scenario; drop --scenario", file=sys.stderr)
            return 2
        # Checked before the run, not after minutes of it.
        if not args.write_doc.is_file() or BEGIN not in args.write_doc.read_text(encoding="utf-8"):
            print(f"queue-scaler bench: {args.write_doc} has no bench-results markers ({BEGIN})", file=sys.stderr)
            return 2
    if args.warm_pool is not None:
        return _run_warm(names, args)
    plots = not args.no_plots
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task("bench", total=len(names) * len(POLICIES))

        def advance(scenario: str, policy: str) -> None:
            progress.update(task, advance=1, description=f"{scenario}: {policy}")

        result = run_bench(names, record_series=plots, on_run=advance)
    written = []
    if plots:
        winners = {s: winner({p: r.metrics for p, r in runs.items()}) for s, runs in result.runs.items()}
        for scenario, runs in result.runs.items():
            max_size = sum(pool.max_size for pool in load_scenario(scenario).pools)
            path = Path(args.plots) / f"{scenario}.png"
            written.append(plot_runs(list(runs.values()), path, scenario, max_size, winners[scenario]))
        tradeoff = tradeoff_figure({s: list(runs.values()) for s, runs in result.runs.items()}, winners)
        written.append(save(tradeoff, Path(args.plots) / "wait-vs-cost.png"))
    if args.write_doc is not None:
        day, load = datetime.now(UTC).strftime("%Y-%m-%d"), os.getloadavg()[0]
        write_doc(args.write_doc, result, day, os.cpu_count() or 1, load)
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    console = output.console()
    print_bench(result, console)
    if written:
        console.print(f"plots: {', '.join(str(p) for p in written)}")
    if args.write_doc is not None:
        console.print(f"result tables written into {args.write_doc}")
    return 0


def _run_warm(names: list[str], args: argparse.Namespace) -> int:
    from rich.console import Console

    from devkit import output
    from devkit.sim.bench import WARM_POLICIES, run_warm
    from devkit.sim.report import print_warm

    if args.write_doc is not None:
        print("queue-scaler bench: --warm-pool writes no doc; drop --write-doc", file=sys.stderr)
        return 2
    with Console(stderr=True).status("bench --warm-pool") as status:

        def advance(scenario: str, policy: str) -> None:
            status.update(f"{scenario}: {policy} (cold and warm)")

        comparison = run_warm(names, args.warm_pool, on_run=advance, reuse=args.warm_reuse)
    if args.json:
        print(json.dumps(comparison.as_json()))
        return 0
    console = output.console()
    print_warm(comparison, console)
    console.print(f"policies compared: {', '.join(WARM_POLICIES)}")
    return 0

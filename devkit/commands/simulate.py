"""`queue-scaler simulate SCENARIO --policy P [--json] [--plot FILE]`: one scenario under one policy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from queue_scaler.shared.validation import describe_validation_error


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of `queue-scaler simulate` (devkit/cli.py names the command and its help)."""
    from devkit.sim.policies import OURS, POLICIES, registry

    parser.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file, or a built-in scenario's name")
    models = "; ".join(f"{name}: {registry.get(name).citation}" for name in POLICIES)
    parser.add_argument("--policy", choices=POLICIES, default=OURS, help=f"scaling policy (default {OURS}); {models}")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--plot", metavar="FILE", help="write a PNG of backlog, capacity and wait over time")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devkit import output
    from devkit.sim.plot import plot_runs
    from devkit.sim.report import metrics_table
    from devkit.sim.runner import simulate
    from devkit.sim.scenario import EmptyScenario, load_scenario

    try:
        scenario = load_scenario(args.scenario)
        result = simulate(scenario, args.policy, record_series=args.plot is not None)
    except ValidationError as error:
        print(f"queue-scaler simulate: invalid scenario:\n{describe_validation_error(error)}", file=sys.stderr)
        return 2
    except (OSError, yaml.YAMLError, EmptyScenario) as error:
        print(f"queue-scaler simulate: {error}", file=sys.stderr)
        return 2
    if args.plot:
        plot_runs([result], Path(args.plot), scenario.name, sum(pool.max_size for pool in scenario.pools))
    if args.json:
        print(json.dumps(result.metrics))
    else:
        output.console().print(metrics_table(f"{scenario.name}  (waits in s)", {args.policy: result.metrics}))
    return 0

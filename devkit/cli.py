"""The `queue-scaler` command line: decide, explain, schema and the local tools.

Each command lives in its own module under `devkit/commands/`; this table names the commands, their
help and their modules, so the entry point stays a table of contents. Only the module of the command
being run is imported (its `configure(parser, command)` adds its arguments): the others pull in
boto3, moto, pydantic, rich or matplotlib, and `queue-scaler --version` or `--help` needs none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

#: command -> (module under devkit.commands, one-line help), in the order `--help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "decide": ("decide", "decide one pool's capacity from a JSON request (no AWS)"),
    "explain": ("explain", "observe queues and groups, print each pool's decision and why (writes nothing)"),
    "schema": ("schema", "print the JSON Schema of the scaler configuration"),
    "invoke": ("invoke", "run a template function's handler on an event, against the local cloud"),
    "demo": ("demo", "a burst across plans on the local cloud: scale-out, jobs, DLQ, drain"),
    "local": ("local", "run the whole system on this machine: up, status, down"),
    "simulate": ("simulate", "replay a scenario's workload against one scaling policy"),
    "bench": ("bench", "compare queue-scaler with its peers on the built-in and held-out scenarios"),
    "submit": ("producer", "route a job to its queue, reserve its credits and send it"),
    "jobs": ("producer", "a job's fate: its plan, credits, attempts and outcome"),
    "credits": ("producer", "users' credits"),
    "preflight": ("preflight", "read an AWS account and name each prerequisite a deploy of ENV would miss (exit 1)"),
    "env-vars": (
        "envvars",
        "write a `sam local invoke --env-vars` file: every function's environment for the local cloud or a stack",
    ),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the arguments of only the command `argv` names (every command's without `argv`)."""
    parser = argparse.ArgumentParser(
        prog="queue-scaler",
        description="Keep SQS-fed EC2 worker fleets sized to their backlog.",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The top-level parser has no option taking a value, so the first word that is not an option is the command.
    chosen = None if argv is None else next((word for word in argv if not word.startswith("-")), "")
    for command, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(command, help=help_text, description=help_text)
        if chosen is None or command == chosen:
            importlib.import_module(f"devkit.commands.{module}").configure(command_parser, command)
    return parser


class _Version(argparse.Action):
    """`--version`: the installed distribution's version, looked up only when asked (importlib.metadata
    parses package metadata with the email package: a tenth of a second every other command need not pay)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib import metadata

        try:
            version = metadata.version("queue-scaler")
        except metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        print(f"{parser.prog} {version}")  # on standard output, as argparse's own version action prints it
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The services log through stdlib loggers; on a terminal, warnings and errors are enough, with
    # the context they log as `extra` (the queue, the pool, the error code) on the same line.
    handler = logging.StreamHandler()
    handler.setFormatter(_WithExtras("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    args = build_parser(argv).parse_args(argv)
    from devkit.ownership import Stopped, stop_on_signals

    try:
        with stop_on_signals():
            code: int = args.run(args)
            # Inside the guard: a reader gone before the last buffered line still counts as a closed pipe.
            sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt as stopped:
        # Ctrl-C, SIGTERM or SIGHUP: one line, no traceback; what the command started was stopped on the way out.
        name = stopped.signal.name if isinstance(stopped, Stopped) else "SIGINT"
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(f"queue-scaler {args.command}: stopped by {name}", file=sys.stderr)
        return 128 + int(stopped.signal if isinstance(stopped, Stopped) else signal.SIGINT)
    return code


class _WithExtras(logging.Formatter):
    """A log line followed by the fields passed as `extra` (a terminal has no JSON log viewer)."""

    _standard = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {key: value for key, value in record.__dict__.items() if key not in self._standard}
        return line + "".join(f" {key}={value}" for key, value in extras.items())


def _reader_gone() -> int:
    """`queue-scaler ... | head` closed the pipe: no traceback, as the CPython docs recommend (signal
    module, "Note on SIGPIPE"): point stdout at devnull so that the flush at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()

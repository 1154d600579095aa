"""Helpers shared by the CLI commands."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import ValidationError


def read_text(path: str) -> str:
    """A file's text, or standard input for '-'."""
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def format_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field by its dotted path (e.g. pool.queues.0.name)."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(request)"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)

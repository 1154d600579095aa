"""Helpers shared by the CLI commands."""

from __future__ import annotations

import sys
from pathlib import Path


def read_text(path: str) -> str:
    """A file's text, or standard input for '-'."""
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")

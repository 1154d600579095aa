"""Consoles for the CLI's output: fitted to a terminal, never hard-wrapped when piped.

rich assumes 80 columns when standard output is not a terminal; a table would then truncate its
cells and a long summary line would be broken in two, which breaks `grep` and scripts. Piped, the
console is as wide as the content needs; on a terminal it is the terminal's width, and tables fold
cell content onto more lines (columns with `overflow="fold"`) instead of cutting it.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console

#: Wide enough for any line we print: piped output is never wrapped by us.
PIPED_WIDTH = 10_000


def console(stderr: bool = False, file: IO[str] | None = None) -> Console:
    """A console for standard output (or `stderr`, or `file`)."""
    stream = file or (sys.stderr if stderr else sys.stdout)
    if stream.isatty():
        return Console(file=stream)
    return Console(file=stream, width=PIPED_WIDTH, soft_wrap=True)

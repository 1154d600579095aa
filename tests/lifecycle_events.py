"""The lifecycle service's log records as docs/lifecycle-events.md documents them, and the check
every test runs against it (tests/conftest.py)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "lifecycle-events.md"
LOGGER = "queue_scaler.lifecycle.services.lifecycle"
#: What every LogRecord has before a call's `extra` is added.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


@dataclass(frozen=True)
class Documented:
    level: str
    required: frozenset[str]
    optional: frozenset[str]


@cache
def documented() -> dict[str, Documented]:
    """The table of docs/lifecycle-events.md, by message."""
    table: dict[str, Documented] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        row = re.fullmatch(r"\| ([a-z][^|]*?) \| (info|warning|error) \|([^|]*)\|", line)
        if row is None:
            continue
        message, level, fields = row.group(1), row.group(2), row.group(3)
        names = [f.strip() for f in fields.split(",") if f.strip()]
        table[message] = Documented(
            level=level,
            required=frozenset(n for n in names if not n.endswith("?")),
            optional=frozenset(n.removesuffix("?") for n in names if n.endswith("?")),
        )
    return table


def undocumented(records: list[logging.LogRecord]) -> list[str]:
    """What is wrong with each record against the doc: its message, its level or its fields."""
    table = documented()
    problems: list[str] = []
    for record in records:
        message = record.getMessage()
        doc = table.get(message)
        if doc is None:
            problems.append(f"{message!r}: not in {DOC.name}")
            continue
        if record.levelname.lower() != doc.level:
            problems.append(f"{message!r}: level {record.levelname.lower()}, documented {doc.level}")
        # A field that is there but empty (None) is as good as missing: only a `?` field may be unknown.
        fields = {k for k, v in record.__dict__.items() if k not in _STANDARD and (v is not None or k in doc.optional)}
        if not doc.required <= fields <= doc.required | doc.optional:
            problems.append(f"{message!r}: fields {sorted(fields)}, documented {sorted(doc.required | doc.optional)}")
    return problems


class Recorder(logging.Handler):
    """Keeps every record of the lifecycle service's logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

"""The worker's log lines as docs/worker-events.md documents them, and the check tests run against it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "worker-events.md"


@dataclass(frozen=True)
class Documented:
    levels: frozenset[str]
    messages: frozenset[str]
    required: frozenset[str]
    optional: frozenset[str]


def documented() -> dict[str, Documented]:
    """The table of docs/worker-events.md, by event."""
    table: dict[str, Documented] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        row = re.fullmatch(r"\| `(\w+)` \|([^|]+)\|([^|]+)\|([^|]*)\|", line)
        if row is None:
            continue
        event, levels, messages, fields = (cell.strip() for cell in row.groups())
        names = [f.strip() for f in fields.split(",") if f.strip()]
        table[event] = Documented(
            levels=frozenset(level.strip() for level in levels.split("/")),
            messages=frozenset(message.strip() for message in messages.split(" / ")),
            required=frozenset(n for n in names if not n.endswith("?")),
            optional=frozenset(n.removesuffix("?") for n in names if n.endswith("?")),
        )
    return table


#: Keys Powertools adds to every JSON log line.
_POWERTOOLS_KEYS = frozenset({"location", "timestamp", "service", "pool", "sampling_rate", "xray_trace_id"})


def from_json(record: dict[str, Any]) -> dict[str, Any]:
    """A worker's JSON log line as `undocumented` reads it (Powertools' own keys left out)."""
    line = {k: v for k, v in record.items() if k not in _POWERTOOLS_KEYS}
    line["level"] = str(line["level"]).lower()
    return line


def undocumented(lines: list[dict[str, Any]]) -> list[str]:
    """What is wrong with each recorded line ({event, message, level, job_id, **fields}) against the doc."""
    table = documented()
    problems: list[str] = []
    for line in lines:
        event = line["event"]
        doc = table.get(event)
        if doc is None:
            problems.append(f"{event}: not in {DOC.name}")
            continue
        fields = {k for k, v in line.items() if k not in {"event", "message", "level"} and (k != "job_id" or v)}
        if line["message"] not in doc.messages:
            problems.append(f"{event}: message {line['message']!r} is not one of {sorted(doc.messages)}")
        if line["level"] not in doc.levels:
            problems.append(f"{event}: level {line['level']!r} is not one of {sorted(doc.levels)}")
        if not doc.required <= fields <= doc.required | doc.optional:
            problems.append(
                f"{event}: fields {sorted(fields)}, documented {sorted(doc.required)} + {sorted(doc.optional)}"
            )
    return problems

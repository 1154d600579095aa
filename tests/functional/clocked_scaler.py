"""ScalerFunction's handler run one tick per invocation at a wall-clock time the test sets (time-machine):
for signals that depend on the clock (schedule, forecast)."""

from __future__ import annotations

import json
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest
import time_machine

from tests.functional.handlers import FakeContext, event, load_handler
from tests.functional.moto_stack import create_history_table

PARAMETER = "/queue-scaler/test/pools"
TABLE = "scaler-history"


def load_scaler(monkeypatch: pytest.MonkeyPatch, table: str, tick_seconds: str, run_seconds: str) -> ModuleType:
    """The scaler handler with its environment: the pools in PARAMETER, history in `table`, and its
    ticks (`run_seconds` "0": one tick per invocation)."""
    for key, value in {
        "POOL_CONFIG_PARAMETER": PARAMETER,
        "HISTORY_TABLE": table,
        "ENVIRONMENT": "test",
        "TICK_SECONDS": tick_seconds,
        "RUN_SECONDS": run_seconds,
        "SAFETY_MARGIN_SECONDS": "0",
        "POWERTOOLS_SERVICE_NAME": "scaler",
        "POWERTOOLS_METRICS_NAMESPACE": "QueueScaler",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    return load_handler("scaler")


def clocked_scaler(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The handler over a fresh history table and the pools in PARAMETER, one tick per invocation: the
    clock is set per invocation."""
    create_history_table(TABLE)
    return load_scaler(monkeypatch, TABLE, tick_seconds="10", run_seconds="0")


def invoke_at(scaler: ModuleType, moment: datetime | float) -> dict[str, Any]:
    """The one pool's decision of an invocation at `moment` (the clock stands still during it)."""
    with time_machine.travel(moment, tick=False):
        result: dict[str, Any] = scaler.lambda_handler(event("scaler", "scheduled.json"), FakeContext())
    [outcome] = result["pools"]
    decision: dict[str, Any] = outcome["decision"]
    return decision


def published(stdout: str, pool: str) -> dict[str, tuple[float, str]]:
    """The metrics the invocations printed as EMF for `pool` (dimensions Environment, Pool, service):
    each name's last value, with its unit."""
    out: dict[str, tuple[float, str]] = {}
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        [directive] = doc["_aws"]["CloudWatchMetrics"]
        if doc.get("Pool") != pool or set(directive["Dimensions"][0]) != {"Environment", "Pool", "service"}:
            continue
        for metric in directive["Metrics"]:
            value = doc[metric["Name"]]
            out[metric["Name"]] = (value[-1] if isinstance(value, list) else value, metric["Unit"])
    return out

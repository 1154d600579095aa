"""What CloudWatch Logs does with a Lambda function's embedded metric format (EMF) lines: it turns
them into metrics. `queue-scaler invoke` does the same against the local cloud, so that the
metrics a handler publishes (MetricsFunction's backlog per instance) exist there as they would on AWS.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import IO, Any

#: PutMetricData takes at most this many data points per call.
BATCH = 1000


class Tee(io.TextIOBase):
    """A text stream that writes through to `target` and keeps every line it saw."""

    def __init__(self, target: IO[str]) -> None:
        self._target = target
        self._buffer = ""
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self._target.write(text)
        self._buffer += text
        *complete, self._buffer = self._buffer.split("\n")
        self.lines.extend(complete)
        return len(text)

    def flush(self) -> None:
        self._target.flush()


def metric_data(line: str) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) for every metric of one EMF line; nothing for any other line."""
    try:
        record = json.loads(line)
    except ValueError:
        return []
    if not isinstance(record, dict) or not isinstance(record.get("_aws"), dict):
        return []
    data = []
    for directive in record["_aws"].get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions", [[]]):
            dimensions = [{"Name": d, "Value": str(record[d])} for d in dimension_set if d in record]
            for metric in directive.get("Metrics", []):
                value = record.get(metric["Name"])
                values = value if isinstance(value, list) else [value]
                datum = {"MetricName": metric["Name"], "Dimensions": dimensions, "Unit": metric.get("Unit", "None")}
                data += [(directive["Namespace"], {**datum, "Value": float(v)}) for v in values if v is not None]
    return data


def publish(lines: Iterable[str], cloudwatch: Any) -> int:
    """Put every EMF metric of `lines` with PutMetricData; returns how many data points."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        for namespace, datum in metric_data(line):
            by_namespace.setdefault(namespace, []).append(datum)
    for namespace, data in by_namespace.items():
        for start in range(0, len(data), BATCH):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + BATCH])
    return sum(len(data) for data in by_namespace.values())

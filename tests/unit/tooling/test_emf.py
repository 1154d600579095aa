"""EMF lines become metric data as CloudWatch Logs makes them; other lines are not metrics."""

from __future__ import annotations

import io
import json

import pytest

from devkit.emf import Tee, metric_data

EMF = {
    "_aws": {
        "Timestamp": 1795341600000,
        "CloudWatchMetrics": [
            {
                "Namespace": "QueueScaler",
                "Dimensions": [["Pool", "Environment"]],
                "Metrics": [{"Name": "BacklogPerInstance", "Unit": "Count"}, {"Name": "Backlog", "Unit": "Count"}],
            }
        ],
    },
    "Pool": "video",
    "Environment": "local",
    "BacklogPerInstance": 7.5,
    "Backlog": [10, 5],
}

CASES = [
    ("given an EMF line then one datum per metric value", json.dumps(EMF), 3),
    ("given a log line then nothing", json.dumps({"level": "INFO", "message": "decision"}), 0),
    ("given text then nothing", "scaler invoked", 0),
    ("given a JSON list then nothing", "[1, 2]", 0),
]


@pytest.mark.parametrize(("line", "count"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_metric_data(line: str, count: int) -> None:
    data = metric_data(line)
    assert len(data) == count
    for namespace, datum in data:
        assert namespace == "QueueScaler"
        assert datum["Dimensions"] == [{"Name": "Pool", "Value": "video"}, {"Name": "Environment", "Value": "local"}]
        assert datum["Unit"] == "Count"


def test_given_writes_in_pieces_when_teed_then_lines_are_whole_and_passed_through() -> None:
    target = io.StringIO()
    tee = Tee(target)
    tee.write('{"a": ')
    tee.write("1}\nnext")
    tee.write(" line\n")
    assert tee.lines == ['{"a": 1}', "next line"] and target.getvalue() == '{"a": 1}\nnext line\n'

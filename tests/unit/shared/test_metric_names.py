"""The metrics the alarms watch are metrics the services publish: an alarm on a name nothing emits
never fires. The recording sink in tests/fakes.py refuses names outside the same list, so a renamed
metric fails the tests that reach it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fakes import PUBLISHED_METRICS, RecordingMetrics

ROOT = Path(__file__).resolve().parents[3]
# A metric's Namespace and MetricName sit side by side in an alarm's metric stat, in either order.
PAIR = re.compile(
    r"Namespace: (?P<ns1>\S+)\s+MetricName: (?P<m1>\w+)|MetricName: (?P<m2>\w+)\s+Namespace: (?P<ns2>\S+)"
)


def alarmed() -> set[str]:
    names = set()
    for path in [ROOT / "template.yaml", *sorted((ROOT / "templates").glob("*.yaml"))]:
        for match in PAIR.finditer(path.read_text()):
            namespace = match["ns1"] or match["ns2"]
            if namespace == "QueueScaler":
                names.add(match["m1"] or match["m2"])
    return names


def test_given_the_templates_then_every_alarmed_queue_scaler_metric_is_published() -> None:
    names = alarmed()
    assert len(names) >= 10, names  # the pattern still finds the alarms
    assert names <= PUBLISHED_METRICS, sorted(names - PUBLISHED_METRICS)


def test_given_a_name_outside_the_list_when_recorded_then_it_is_refused() -> None:
    with pytest.raises(AssertionError, match="ReturnExhausted"):
        RecordingMetrics().count("ReturnExhausted")

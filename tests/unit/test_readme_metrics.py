"""The README's list of the scaler's metrics names only metrics the code publishes (metric_names.py)."""

from __future__ import annotations

import re
from pathlib import Path

from queue_scaler.shared.metric_names import Metric

README = Path(__file__).resolve().parents[2] / "README.md"
#: AWS's own metrics the paragraph points to instead of publishing a copy.
AWS_METRICS = {"GroupInServiceInstances"}
#: The metrics' dimensions, which the paragraph names first.
DIMENSIONS = {"Pool", "Environment"}


def test_the_scalers_metrics_paragraph_names_only_published_metrics() -> None:
    paragraph = re.search(r"EMF\s+metrics per pool(.*?)never 0\.", README.read_text(), flags=re.S)
    assert paragraph is not None, "the README's scaler metrics paragraph moved: update this test"
    names = set(re.findall(r"`([A-Z][A-Za-z]+)`", paragraph.group(1)))
    assert {"ScaleActions", "ForecastAdded", "PoolErrors"} <= names
    assert names - {m.value for m in Metric} - AWS_METRICS - DIMENSIONS == set()

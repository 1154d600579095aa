"""docs/cost.md's idle bill is the one devkit/cost.py computes from the transformed stack, it stays within
$10 a month, and the counts it rests on are counted here a second way. The README's numbers (alarms,
event source mappings, queues) are the stack's. Every custom metric an alarm watches is in the one
list of metric names, with the dimensions the code sends it with."""

from __future__ import annotations

import ast
import contextlib
import io
import re
from typing import Any

import pytest

from devkit import cost
from devkit.stackmodel import ROOT, Stack
from queue_scaler.shared.metric_names import METRICS, Metric, Published
from queue_scaler.shared.observability import EmfMetrics

from . import invariants as inv

DOC = ROOT / "docs" / "cost.md"
README = ROOT / "README.md"
BUDGET = 10.00


@pytest.fixture(scope="module")
def stack(templates: dict[str, Any]) -> Stack:
    return cost.default_stack(templates)


def test_given_the_doc_then_its_generated_section_is_what_the_model_computes(stack: Stack) -> None:
    text = DOC.read_text()
    start, end = text.index(cost.BEGIN), text.index(cost.END) + len(cost.END)
    assert text[start:end] == cost.render(stack), "docs/cost.md is stale: paste `python -m devkit.cost` into it"


def test_given_the_default_stack_then_its_idle_month_is_within_the_budget(stack: Stack) -> None:
    assert cost.total(cost.count(stack)) <= BUDGET


def test_given_the_default_stack_then_the_counts_are_the_templates(stack: Stack) -> None:
    counts = cost.count(stack)
    alarms = inv.of_type(stack, "AWS::CloudWatch::Alarm")
    # A second way to count what an alarm is billed for: each metric stat it names.
    named = [
        [a.properties] if "MetricName" in a.properties else [m for m in a.properties["Metrics"] if "MetricStat" in m]
        for a in alarms
    ]
    assert (counts.alarms, counts.alarm_metrics) == (len(alarms), sum(len(n) for n in named))
    assert counts.mappings == len(inv.of_type(stack, "AWS::Lambda::EventSourceMapping")) == 12
    assert counts.job_queues == len(inv.job_queues(stack)) == 11
    assert counts.pools == 3
    assert set(counts.functions) == {"ScalerFunction", "LifecycleFunction", "MetricsFunction", "DlqRefundFunction"}
    assert counts.scheduled == {"ScalerFunction": 1, "LifecycleFunction": 1, "MetricsFunction": 1}
    assert counts.queue_reads == {"ScalerFunction": 11, "MetricsFunction": 22, "LifecycleFunction": 0}
    assert counts.dashboards == 0 and not counts.traced and counts.custom_metrics == 0


@pytest.mark.parametrize(
    ("name", "overrides", "changed"),
    [
        ("given the dashboard enabled then it is counted", {"DashboardEnabled": "true"}, {"dashboards": 1}),
        ("given tracing active then every scheduled invocation is traced", {"TracingMode": "Active"}, {"traced": True}),
        (
            "given a pool under target tracking then its BacklogPerInstance is sent every minute",
            {"VideoScalingMode": "target-tracking"},
            {"custom_metrics": 1},
        ),
    ],
)
def test_given_an_option_then_the_model_counts_what_it_adds(
    templates: dict[str, Any], name: str, overrides: dict[str, str], changed: dict[str, Any]
) -> None:
    base = cost.default_stack(templates)
    optioned = cost.default_stack(templates, overrides)
    before, after = cost.count(base), cost.count(optioned)
    assert {k: getattr(after, k) for k in changed} == changed
    assert cost.total(after) > cost.total(before)


def _readme_number(label: str) -> int:
    match = re.search(rf"^\| {re.escape(label)} \| (\d+)", README.read_text(), re.MULTILINE)
    assert match, f"README's quota table has no row {label!r}"
    return int(match.group(1))


def test_given_the_readme_then_its_quota_numbers_are_the_stacks(stack: Stack) -> None:
    counts = cost.count(stack)
    assert _readme_number("CloudWatch alarms") == counts.alarms
    assert _readme_number("Lambda event source mappings") == counts.mappings
    assert _readme_number("SQS queues") == len(inv.of_type(stack, "AWS::SQS::Queue"))
    assert _readme_number("EventBridge rules") == len(inv.of_type(stack, "AWS::Events::Rule"))
    paging = re.search(r"(\d+) alarms watching (\d+) metrics", README.read_text())
    assert paging, "README's 'What pages on-call' gives no alarm count"
    assert (int(paging.group(1)), int(paging.group(2))) == (counts.alarms, counts.alarm_metrics)


def test_given_every_alarm_then_each_custom_metric_it_watches_is_listed_with_its_dimensions(stack: Stack) -> None:
    specs = {m.metric.value: m for m in METRICS}
    watched = []
    for alarm in inv.of_type(stack, "AWS::CloudWatch::Alarm"):
        props = alarm.properties
        metrics = (
            [props]
            if "MetricName" in props
            else [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
        )
        watched += [m for m in metrics if m["Namespace"] == "QueueScaler"]
    assert watched
    for metric in watched:
        spec = specs.get(metric["MetricName"])
        assert spec is not None, f"{metric['MetricName']} is not in queue_scaler.shared.metric_names"
        names = {d["Name"] for d in metric["Dimensions"]}
        assert names == spec.dimensions.names, metric["MetricName"]


def test_given_the_code_then_it_names_metrics_only_through_the_list() -> None:
    """The ports take `Metric` members (mypy refuses a string); no metric name is written as a string
    anywhere else in the product either (a dict of figures, an untyped sink), so the list is the only
    spelling of each name."""
    names = {m.value for m in Metric}
    sources = [
        *(ROOT / "layers" / "core" / "queue_scaler").rglob("*.py"),
        *(ROOT / "functions").rglob("*.py"),
        *(ROOT / "workers").rglob("*.py"),
    ]
    spelled = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for path in sources
        if path.name != "metric_names.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    ]
    assert len(sources) > 20, "the product's sources were not found"
    assert spelled == [], "use queue_scaler.shared.metric_names.Metric:\n" + "\n".join(spelled)


def test_given_the_signals_figures_then_what_a_configured_pool_adds_is_what_the_doc_says() -> None:
    """The doc's per-pool price of the schedule's and the forecast's metrics, and the size of their EMF
    line, from the list and from what the sink prints (the longest names, the widest values)."""
    configured = [m.metric for m in METRICS if m.published is Published.EVERY_MINUTE_IF_CONFIGURED]
    schedule = [m for m in configured if m.value.startswith("Schedule")]
    forecast = [m for m in configured if m.value.startswith("Forecast")]
    assert len(schedule) + len(forecast) == len(configured)
    text = " ".join(DOC.read_text().split())
    assert (
        f"a pool with schedules adds {len(schedule)} custom metric "
        f"(${len(schedule) * cost.CUSTOM_METRIC:.2f} a month)" in text
    )
    assert f"`forecast_and_scale` {len(forecast)} (${len(forecast) * cost.CUSTOM_METRIC:.2f} a month)" in text
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        EmfMetrics("QueueScaler", "queue-scaler", "production").pool_metrics(
            "p" * 80, dict.fromkeys(configured, 1234.567891)
        )
    size = len(printed.getvalue().encode())
    assert size <= 700
    logs = 700 * cost.MINUTES / 1e9 * cost.LOG_GB
    assert f"(at most 700 bytes with all {len(configured)} and an 80-character pool name: ${logs:.2f}" in text

"""The default stack at idle, run under moto: what its scheduled functions publish and log, and what the
scaler's history item weighs. docs/cost.md's figures (devkit/cost.py) rest on these measurements.

The pools, queues and policy are the transformed template's own (devkit.cost.default_stack): each
function gets the pool configuration the stack writes, on queues and groups of the same names.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest
import time_machine

from devkit import cost
from devkit.stackmodel import Stack
from tests.functional.handlers import FakeContext, event, load_handler
from tests.functional.moto_stack import REGION, create_actions_table, create_group, create_history_table, put_config

# Lambda's own lines per invocation (START, END, REPORT with an init duration), as CloudWatch Logs
# ingests them: about 300 bytes, and 26 bytes of each log event counted on top of its message.
PLATFORM_BYTES = 300
EVENT_OVERHEAD = 26


@pytest.fixture(scope="module")
def stack() -> Stack:
    return cost.default_stack()


def _parameter(stack: Stack, function: str) -> dict[str, Any]:
    variables = stack.resources()[function].properties["Environment"]["Variables"]
    name = variables.get("POOL_CONFIG_PARAMETER") or variables["MEASURED_POOLS_PARAMETER"]
    [value] = [
        json.loads(p.properties["Value"])
        for p in stack.walk()
        if p.type == "AWS::SSM::Parameter" and p.properties["Name"] == name
    ]
    return value


def _create(stack: Stack) -> list[dict[str, Any]]:
    """The stack's queues, dead-letter queues and groups in moto; its pools, with moto's URLs."""
    sqs = boto3.client("sqs", region_name=REGION)
    pools = _parameter(stack, "MetricsFunction")["pools"]
    for pool in pools:
        create_group(pool["auto_scaling_group"], desired=pool.get("min_size", 0))
        for queue in pool["queues"]:
            queue["url"] = sqs.create_queue(QueueName=queue["name"])["QueueUrl"]
            sqs.create_queue(QueueName=f"{queue['name']}-dlq")
    return pools


def _environment(stack: Stack, function: str, **more: str) -> dict[str, str]:
    variables = stack.resources()[function].properties["Environment"]["Variables"]
    return {k: str(v) for k, v in variables.items()} | more


def _invoke(handler: ModuleType, sample: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    capsys.readouterr()
    result = handler.lambda_handler(event(*sample), FakeContext())
    captured = capsys.readouterr()
    return result, captured.out + captured.err


def _metrics(output: str) -> list[str]:
    return [
        m["Name"]
        for line in output.splitlines()
        if line.startswith('{"_aws"')
        for m in json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    ]


def _logged(output: str) -> int:
    lines = [line for line in output.splitlines() if line]
    return PLATFORM_BYTES + sum(len(line.encode()) + EVENT_OVERHEAD for line in lines)


def _item_bytes(value: Any) -> int:
    """DynamoDB's item size rules, rounded up: names and strings by length, numbers about 1 byte per
    2 digits plus 1, lists and maps 3 bytes plus 1 per element."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return math.ceil(len(inner) / 2) + 1
    if kind == "L":
        return 3 + sum(1 + _item_bytes(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _item_bytes(v) for k, v in inner.items())
    return len(json.dumps(inner))


def _every_minute(minutes: int, run: Callable[[], None]) -> None:
    start = time.time()
    for minute in range(minutes):
        with time_machine.travel(start + 60 * minute, tick=False):
            run()


def test_given_the_default_stack_idle_then_no_function_publishes_a_metric_and_each_logs_within_the_model(
    aws: None, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pools = _create(stack)
    scaler_parameter, measured_parameter = "/test/pools", "/test/measured-pools"
    scaled = {p["name"] for p in _parameter(stack, "ScalerFunction")["pools"]}
    put_config(scaler_parameter, [p for p in pools if p["name"] in scaled])
    put_config(measured_parameter, pools)
    history = create_history_table()
    actions = create_actions_table()
    groups = ",".join(p["auto_scaling_group"] for p in pools)
    common = {"POWERTOOLS_TRACE_DISABLED": "true"}
    environments = {
        "scaler": _environment(
            stack,
            "ScalerFunction",
            POOL_CONFIG_PARAMETER=scaler_parameter,
            HISTORY_TABLE=history,
            ACTIONS_TABLE=actions,
        ),
        "metrics": _environment(stack, "MetricsFunction", MEASURED_POOLS_PARAMETER=measured_parameter),
        "lifecycle": _environment(
            stack, "LifecycleFunction", ACTIONS_TABLE=actions, GROUP_NAMES=groups, POOL_TIMINGS="{}"
        ),
    }
    samples = {
        "scaler": ("scaler", "scheduled.json"),
        "metrics": ("metrics", "scheduled.json"),
        "lifecycle": ("lifecycle", "reconcile-scheduled.json"),
    }
    logged: dict[str, int] = {}
    published: list[str] = []
    for name, variables in environments.items():
        for key, value in (variables | common).items():
            monkeypatch.setenv(key, value)
        handler = load_handler(name)
        sizes: list[int] = []

        def run(handler: ModuleType = handler, name: str = name, sizes: list[int] = sizes) -> None:
            result, output = _invoke(handler, samples[name], capsys)
            if name == "scaler":
                assert result["ticks"] == 1, result  # an idle invocation ends after its first tick
            published.extend(_metrics(output))
            sizes.append(_logged(output))

        # A quarter of an hour: the scaler's history fills its 900 s window with one-minute entries.
        _every_minute(16, run)
        logged[name] = max(sizes)

    # What CloudWatch bills at idle: custom metrics sent every minute. The model counts the same.
    assert published == []
    assert cost.count(stack).custom_metrics == 0
    function = {"scaler": "ScalerFunction", "metrics": "MetricsFunction", "lifecycle": "LifecycleFunction"}
    for name, size in logged.items():
        assert size <= cost.IDLE_LOG_BYTES[function[name]], (name, size)

    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=history)["Items"]
    assert {i["pool"]["S"] for i in items} == scaled
    heaviest = max(sum(len(k) + _item_bytes(v) for k, v in item.items()) for item in items)
    # A strongly consistent read of up to 4 KB is 1 read unit; a write is 1 unit per KB.
    assert heaviest <= 4096 * cost.HISTORY_READ_UNITS
    assert math.ceil(heaviest / 1024) <= cost.HISTORY_WRITE_UNITS, heaviest
    print(f"idle log bytes per invocation: {logged}; history item: {heaviest} bytes")

"""MetricsFunction's handler under moto: backlog per instance per pool and queue, published as EMF."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from queue_scaler.adapters.cloudwatch import CloudWatchMessageAges
from tests.functional.handlers import FakeContext, event, load_handler
from tests.functional.moto_stack import REGION, create_group, create_queue, pool_config, put_config

PARAMETER = "/queue-scaler/test/pools"


@pytest.fixture
def metrics_fn(aws: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for key, value in {
        "POOL_CONFIG_PARAMETER": PARAMETER,
        "ENVIRONMENT": "test",
        "POWERTOOLS_SERVICE_NAME": "queue-scaler",
        "POWERTOOLS_METRICS_NAMESPACE": "QueueScaler",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    return load_handler("metrics")


def emf(stdout: str) -> list[dict[str, Any]]:
    """The EMF documents printed on stdout, as CloudWatch Logs would receive them."""
    docs = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]
    return docs


def figures(docs: list[dict[str, Any]], **dimensions: str) -> dict[str, float]:
    """Metric values of the documents whose dimension set is exactly `dimensions` plus Environment and service."""
    wanted = dimensions | {"Environment": "test", "service": "queue-scaler"}
    out: dict[str, float] = {}
    for doc in docs:
        [[*names]] = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        if set(names) == set(wanted) and all(doc[k] == v for k, v in wanted.items()):
            for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                out[metric["Name"]] = doc[metric["Name"]][0]
    return out


def put_age(queue: str, seconds: float) -> None:
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": queue}],
                "Timestamp": datetime.now(UTC) - timedelta(minutes=2),
                "Value": seconds,
                "Unit": "Seconds",
            }
        ],
    )


@pytest.mark.parametrize("sample", ["scheduled.json", "sam-generated-scheduled.json"])
def test_given_two_pools_when_invoked_then_backlog_per_instance_is_published_per_pool_and_queue(
    metrics_fn: ModuleType, capsys: pytest.CaptureFixture[str], sample: str
) -> None:
    create_group("video", desired=2)
    create_group("ai", desired=0)
    pro = create_queue("video-pro", messages=9)
    free = create_queue("video-free", messages=5)
    ai = create_queue("ai-pro", messages=3)
    put_config(
        PARAMETER,
        [
            pool_config("video", [("video-pro", pro, 5), ("video-free", free, 10)]),
            pool_config("ai", [("ai-pro", ai, 5)]),
        ],
    )
    put_age("video-pro", 240.0)
    result = metrics_fn.lambda_handler(event("metrics", sample), FakeContext())
    video, ai_pool = result["pools"]
    assert video["load"]["totals"] == {"backlog": 14, "backlog_per_instance": 7.0, "backlog_while_at_zero": 0}
    assert ai_pool["load"]["totals"] == {"backlog": 3, "backlog_per_instance": 3.0, "backlog_while_at_zero": 3}

    docs = emf(capsys.readouterr().out)
    assert figures(docs, Pool="video") == {
        "DesiredCapacity": 2,
        "InService": 2,
        "Backlog": 14,
        "BacklogPerInstance": 7.0,
        "BacklogWhileAtZero": 0,
    }
    assert figures(docs, Pool="ai")["BacklogWhileAtZero"] == 3
    assert figures(docs, Pool="video", Queue="video-pro") == {
        "Backlog": 9,
        "BacklogPerInstance": 4.5,
        "AgeOfOldestMessage": 240.0,
    }
    assert figures(docs, Pool="video", Queue="video-free") == {"Backlog": 5, "BacklogPerInstance": 2.5}
    age_doc = next(d for d in docs if "AgeOfOldestMessage" in d)
    assert age_doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "AgeOfOldestMessage", "Unit": "Seconds"}]


def test_given_a_missing_group_and_a_missing_queue_then_the_rest_is_still_published(
    metrics_fn: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    create_group("video", desired=1)
    pro = create_queue("video-pro", messages=4)
    put_config(
        PARAMETER,
        [
            pool_config("video", [("video-pro", pro, 5), ("video-gone", pro.replace("video-pro", "video-gone"), 5)]),
            pool_config("ghost", [("video-pro", pro, 5)]),
        ],
    )
    video, ghost = metrics_fn.lambda_handler(event("metrics", "scheduled.json"), FakeContext())["pools"]
    assert video["load"]["totals"] is None and video["load"]["unavailable"] == ["video-gone"]
    assert "not found" in ghost["error"]
    docs = emf(capsys.readouterr().out)
    assert "BacklogPerInstance" not in figures(docs, Pool="video")  # withheld, never published as 0
    assert figures(docs, Pool="video", Queue="video-pro")["BacklogPerInstance"] == 4
    assert figures(docs, Pool="video")["QueueReadErrors"] == 1 and figures(docs, Pool="ghost")["PoolErrors"] == 1


def test_given_an_alarm_event_when_invoked_then_it_is_rejected(metrics_fn: ModuleType) -> None:
    put_config(PARAMETER, [])
    with pytest.raises(Exception, match="detail-type"):
        metrics_fn.lambda_handler(event("scaler", "alarm-backlog-at-zero.json"), FakeContext())


def test_given_no_datapoint_then_the_age_is_absent_not_zero(aws: None) -> None:
    put_age("busy", 90.0)
    ages = CloudWatchMessageAges().oldest(["busy", "idle"], datetime.now(UTC).timestamp())
    assert ages == {"busy": 90.0}

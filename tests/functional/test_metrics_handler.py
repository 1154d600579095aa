"""MetricsFunction's handler under moto: backlog per instance per pool, and the pool alarms' signals only
when they are not 0, published as EMF; nothing per queue (AWS/SQS has those figures for free)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.functional.handlers import FakeContext, event, load_handler
from tests.functional.moto_stack import create_group, create_queue, pool_config, put_config

PARAMETER = "/queue-scaler/test/pools"


@pytest.fixture
def metrics_fn(aws: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for key, value in {
        "MEASURED_POOLS_PARAMETER": PARAMETER,
        "ENVIRONMENT": "test",
        "TARGET_TRACKING_POOLS": "video,ai",
        "DEAD_LETTER_SUFFIX": "-dlq",
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


@pytest.mark.parametrize("sample", ["scheduled.json", "sam-generated-scheduled.json"])
def test_given_two_pools_when_invoked_then_backlog_per_instance_is_published_per_pool_only(
    metrics_fn: ModuleType, capsys: pytest.CaptureFixture[str], sample: str
) -> None:
    create_group("video", desired=2)
    create_group("ai", desired=0)
    pro = create_queue("video-pro", messages=9)
    free = create_queue("video-free", messages=5)
    ai = create_queue("ai-pro", messages=3)
    create_queue("video-pro-dlq", messages=2)
    create_queue("video-free-dlq")
    create_queue("ai-pro-dlq")
    put_config(
        PARAMETER,
        [
            pool_config("video", [("video-pro", pro, 5), ("video-free", free, 10)]),
            pool_config("ai", [("ai-pro", ai, 5)]),
        ],
    )
    result = metrics_fn.lambda_handler(event("metrics", sample), FakeContext())
    video, ai_pool = result["pools"]
    totals = {"backlog": 14, "backlog_per_instance": 7.0, "backlog_while_at_zero": 0, "backlog_at_max": 0}
    assert video["load"]["totals"] == totals
    assert ai_pool["load"]["totals"] == {
        "backlog": 3,
        "backlog_per_instance": 3.0,
        "backlog_while_at_zero": 3,
        "backlog_at_max": 0,
    }

    docs = emf(capsys.readouterr().out)
    assert figures(docs, Pool="video") == {"BacklogPerInstance": 7.0}
    assert figures(docs, Pool="ai") == {"BacklogPerInstance": 3.0, "BacklogWhileAtZero": 3}
    # The dead letters of every dead-letter queue, once for the stack.
    assert figures(docs) == {"DeadLettersWaiting": 2}
    # One document per pool and the dead letters': no per-queue metric.
    assert len(docs) == 3


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
    # Stack-wide failure counts: the pools are named in the log lines.
    assert figures(docs) == {"QueueReadErrors": 1, "PoolErrors": 1}


def test_given_an_alarm_event_when_invoked_then_it_is_rejected(metrics_fn: ModuleType) -> None:
    put_config(PARAMETER, [])
    with pytest.raises(Exception, match="detail-type"):
        metrics_fn.lambda_handler(event("scaler", "alarm-backlog-at-zero.json"), FakeContext())

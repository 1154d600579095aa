"""What a steady tick costs: the AWS calls for 3 pools and 15 queues when nothing changes (docs/cost.md)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from queue_scaler import bootstrap
from queue_scaler.scaling.domain.pool import PoolConfig
from queue_scaler.settings import ScalerSettings
from queue_scaler.shared.adapters import clients
from tests.fakes import RecordingMetrics
from tests.functional.moto_stack import create_actions_table, create_group, create_history_table, create_queue

pytestmark = pytest.mark.usefixtures("aws")

PLANS = ("enterprise", "studio", "pro", "starter", "free")
#: What docs/cost.md states for a steady tick of 3 pools and 15 queues.
STEADY_TICK_CALLS = {"GetQueueAttributes": 15, "DescribeAutoScalingGroups": 1, "BatchGetItem": 1}


def record_calls(calls: Counter[str]) -> None:
    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    for client in (clients.sqs(), clients.autoscaling(), clients.dynamodb()):
        client.meta.events.register("before-call", count)


def test_given_3_pools_and_15_queues_when_a_tick_changes_nothing_then_it_makes_17_calls_and_no_write() -> None:
    pools = []
    for name in ("messaging", "video", "ai"):
        create_group(name, desired=2)
        # 5 messages over a target of 2.5 on 2 instances: exactly the need, nothing to change.
        queues = [
            {"name": f"{name}-{plan}", "url": create_queue(f"{name}-{plan}", 1), "target_per_instance": 2.5}
            for plan in PLANS
        ]
        pools.append(PoolConfig.model_validate({"name": name, "max_size": 20, "queues": queues}))
    settings = ScalerSettings(
        pool_config_parameter="/qs/pools", history_table=create_history_table(), actions_table=create_actions_table()
    )
    service = bootstrap.scale_service(settings, RecordingMetrics())
    service.tick(pools, now=1000.0)  # the invocation's first tick loads each pool's history

    calls: Counter[str] = Counter()
    record_calls(calls)
    for now in (1010.0, 1020.0):
        outcomes = service.tick(pools, now=now)
        assert [o.error for o in outcomes] == [None, None, None]
        assert not any(o.applied for o in outcomes)
    assert dict(calls) == {name: 2 * n for name, n in STEADY_TICK_CALLS.items()}
    assert "PutItem" not in calls and "Scan" not in calls and "GetItem" not in calls

    # The invocation's end writes each pool's remembered recommendations once.
    calls.clear()
    service.flush()
    assert dict(calls) == {"PutItem": 3}

"""The boto3 adapters against moto: real calls, real parsing, errors as domain errors."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from queue_scaler.adapters import clients
from queue_scaler.adapters.autoscaling import AutoScalingFleet
from queue_scaler.adapters.history import DynamoHistoryStore
from queue_scaler.adapters.sqs import SqsQueueMetrics
from queue_scaler.config import QueueConfig
from queue_scaler.domain.models import History, Recommendation, ScaleEvent
from queue_scaler.errors import ConcurrentUpdate, NotFound
from tests.functional.moto_stack import REGION, create_group, create_history_table, create_queue

pytestmark = pytest.mark.usefixtures("aws")


def test_given_messages_visible_in_flight_and_delayed_when_read_then_each_count_is_reported() -> None:
    url = create_queue("video-pro", messages=7)
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=300)
    sqs.send_message(QueueUrl=url, MessageBody="{}", DelaySeconds=600)
    [seen] = SqsQueueMetrics().read([QueueConfig(name="video-pro", url=url, target_per_instance=8)])
    assert (seen.visible, seen.in_flight, seen.delayed, seen.error) == (5, 2, 1, None)


def test_given_a_queue_without_url_when_read_then_it_is_looked_up_by_name() -> None:
    create_queue("video-free", messages=3)
    [seen] = SqsQueueMetrics().read([QueueConfig(name="video-free", target_per_instance=15)])
    assert seen.visible == 3


def test_given_a_missing_queue_when_read_then_it_is_an_error_never_zero() -> None:
    create_queue("present", messages=4)
    missing, present = SqsQueueMetrics().read(
        [
            QueueConfig(name="absent", target_per_instance=1),
            QueueConfig(name="present", target_per_instance=1),
        ]
    )
    assert missing.error is not None and "NonExistentQueue" in missing.error
    assert present.visible == 4


class ThrottlingSqs:
    """A real SQS client that answers ThrottlingException for one queue: moto never throttles."""

    def __init__(self, throttled_url: str) -> None:
        self._client = clients.sqs()
        self._throttled = throttled_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_queue_attributes(self, **kwargs: Any) -> Any:
        if kwargs["QueueUrl"] == self._throttled:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetQueueAttributes"
            )
        return self._client.get_queue_attributes(**kwargs)


def test_given_a_throttled_queue_when_read_then_the_error_code_is_reported() -> None:
    url = create_queue("hot", messages=2)
    [seen] = SqsQueueMetrics(ThrottlingSqs(url)).read([QueueConfig(name="hot", url=url, target_per_instance=1)])  # type: ignore[arg-type]
    assert seen.error == "ThrottlingException"


def test_given_more_than_fifty_groups_when_described_then_all_come_back_in_chunked_calls() -> None:
    names = [f"pool-{i:02d}" for i in range(60)]
    for i, name in enumerate(names):
        create_group(name, desired=i % 3)
    calls: list[int] = []
    client = clients.autoscaling()
    client.meta.events.register(
        "provide-client-params.autoscaling.DescribeAutoScalingGroups",
        lambda params, **_: calls.append(len(params["AutoScalingGroupNames"])),
    )
    fleets = AutoScalingFleet(client).describe([*names, "not-a-group"])
    assert len(fleets) == 60 and "not-a-group" not in fleets
    assert fleets["pool-05"].desired == 2 and fleets["pool-05"].in_service == 2
    assert calls == [50, 11]


def test_given_a_group_when_desired_is_set_then_instances_follow() -> None:
    create_group("video")
    fleet = AutoScalingFleet()
    fleet.set_desired("video", 4)
    assert fleet.describe(["video"])["video"].desired == 4


def test_given_history_when_saved_and_loaded_then_it_round_trips_with_versions() -> None:
    store = DynamoHistoryStore(create_history_table())
    assert store.load("video").version == 0
    history = History(
        recommendations=[Recommendation(at=10.5, desired=3)], scale_events=[ScaleEvent(at=10.5, change=-2)]
    )
    assert store.save("video", history, 0) == 1
    loaded = store.load("video")
    assert (loaded.history, loaded.version) == (history, 1)


def test_given_a_stale_version_when_saving_then_it_is_a_concurrent_update() -> None:
    store = DynamoHistoryStore(create_history_table())
    store.save("video", History(), 0)
    with pytest.raises(ConcurrentUpdate):
        store.save("video", History(), 0)
    store.save("video", History(), 1)
    with pytest.raises(ConcurrentUpdate):
        store.save("video", History(), 1)


def test_given_no_table_when_loading_history_then_it_is_not_found() -> None:
    with pytest.raises(NotFound):
        DynamoHistoryStore("missing-table").load("video")


def test_given_an_instance_recorded_as_leaving_when_described_then_it_counts_as_leaving_not_serving() -> None:
    from queue_scaler.adapters.actions import DynamoActionStore
    from tests.functional.moto_stack import create_actions_table, instances_of

    create_group("video", desired=3)
    leaving_id = instances_of("video")[0]
    table = create_actions_table()
    # What the LifecycleFunction writes for a rebalance recommendation (kind and expiry are what the scan reads).
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=table,
        Item={
            "instance_id": {"S": leaving_id},
            "action": {"S": "rebalance"},
            "kind": {"S": "rebalance"},
            "expires_at": {"N": "9999999999"},
            "version": {"N": "1"},
        },
    )
    fleet = AutoScalingFleet(clients.autoscaling(), DynamoActionStore(table, 0.0, clients.dynamodb()))
    observed = fleet.describe(["video"])["video"]
    assert (observed.desired, observed.in_service, observed.leaving) == (3, 2, 1)
    assert AutoScalingFleet().describe(["video"])["video"].leaving == 0

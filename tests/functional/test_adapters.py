"""The boto3 adapters against moto: real calls, real parsing, errors as domain errors."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from queue_scaler.scaling.adapters.autoscaling import AutoScalingFleet
from queue_scaler.scaling.adapters.history import DynamoHistoryStore
from queue_scaler.scaling.adapters.sqs import SqsQueueMetrics
from queue_scaler.scaling.domain.models import History, Recommendation, ScaleEvent, WorkSample
from queue_scaler.scaling.domain.pool import PoolConfig, QueueConfig
from queue_scaler.shared.adapters import clients
from queue_scaler.shared.errors import ConcurrentUpdate, NotFound
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
    assert fleets["pool-05"].desired == 2 and len(fleets["pool-05"].counted()) == 2
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


def test_given_held_parts_and_work_samples_when_saved_and_loaded_then_they_round_trip() -> None:
    store = DynamoHistoryStore(create_history_table())
    history = History(
        recommendations=[Recommendation(at=10.0, desired=5, held=2.25)],
        samples=[WorkSample(at=0.0, work=7, in_flight=3), WorkSample(at=10.0, work=9, in_flight=4)],
    )
    store.save("video", history, 0)
    assert store.load("video").history == history


def test_given_an_item_written_before_held_and_samples_when_loaded_then_all_of_it_is_remembered() -> None:
    table = create_history_table()
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=table,
        Item={
            "pool": {"S": "video"},
            "version": {"N": "4"},
            "recommendations": {"L": [{"M": {"at": {"N": "10"}, "desired": {"N": "6"}}}]},
            "scale_events": {"L": []},
        },
    )
    loaded = DynamoHistoryStore(table).load("video")
    assert loaded.history == History(recommendations=[Recommendation(at=10.0, desired=6, held=0)])
    assert loaded.version == 4


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


def test_given_an_instance_recorded_as_leaving_when_observed_then_it_counts_as_leaving_not_serving() -> None:
    from queue_scaler.lifecycle.adapters.actions import DynamoLeavingRecords
    from queue_scaler.scaling.adapters.memory import NullMetrics
    from queue_scaler.scaling.services.observation import observe_pools
    from tests.functional.moto_stack import create_actions_table, instances_of

    create_group("video", desired=3)
    leaving_id, *staying = instances_of("video")
    table = create_actions_table()
    # What the LifecycleFunction writes for a rebalance recommendation (kind and expiry are what the rule reads),
    # and a Spot warning whose record has expired (DynamoDB's TTL deletes it up to days late).
    ddb = boto3.client("dynamodb", region_name=REGION)
    for instance, kind, expires in ((leaving_id, "rebalance", "2000"), (staying[0], "spot", "999")):
        ddb.put_item(
            TableName=table,
            Item={
                "instance_id": {"S": instance},
                "action": {"S": kind},
                "kind": {"S": kind},
                "expires_at": {"N": expires},
                "version": {"N": "1"},
            },
        )
    url = create_queue("video-jobs")
    pool = PoolConfig.model_validate(
        {"name": "video", "max_size": 5, "queues": [{"name": "video-jobs", "url": url, "target_per_instance": 1}]}
    )
    queues, fleet, leaving = SqsQueueMetrics(), AutoScalingFleet(), DynamoLeavingRecords(table)
    observed = observe_pools([pool], queues, fleet, NullMetrics(), now=1000.0, leaving=leaving)["video"]
    assert not isinstance(observed, str)
    assert (observed.fleet.desired, observed.fleet.in_service, observed.fleet.leaving) == (3, 2, 1)
    # Past the record's expiry it counts no more: the domain judges it with the `now` it is given.
    later = observe_pools([pool], queues, fleet, NullMetrics(), now=2000.0, leaving=leaving)["video"]
    assert not isinstance(later, str) and later.fleet.leaving == 0


def test_given_more_than_fifty_instances_when_reading_leaving_records_then_keys_are_batched_by_100() -> None:
    from queue_scaler.lifecycle.adapters.actions import DynamoLeavingRecords
    from tests.functional.moto_stack import create_actions_table

    table = create_actions_table()
    calls: list[int] = []
    client = boto3.client("dynamodb", region_name=REGION)
    client.meta.events.register(
        "provide-client-params.dynamodb.BatchGetItem",
        lambda params, **_: calls.append(len(params["RequestItems"][table]["Keys"])),
    )
    assert DynamoLeavingRecords(table, client).records([f"i-{n}" for n in range(120)]) == []
    assert calls == [100, 100, 40]


def test_given_a_missing_sqs_attribute_when_read_then_the_queue_is_an_error_never_zero() -> None:
    url = create_queue("video-jobs", messages=5)
    client = boto3.client("sqs", region_name=REGION)

    def drop_delayed(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Attributes"].pop("ApproximateNumberOfMessagesDelayed", None)

    client.meta.events.register("after-call.sqs.GetQueueAttributes", drop_delayed)
    [observed] = SqsQueueMetrics(client).read([QueueConfig(name="video-jobs", url=url, target_per_instance=1)])
    assert observed.error == "MissingAttribute:ApproximateNumberOfMessagesDelayed"

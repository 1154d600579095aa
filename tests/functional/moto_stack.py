"""Builds a scaler's AWS resources (queues, groups, the template's tables, config parameter) in moto."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import boto3

from devkit import template

REGION = "us-east-1"


def create_table(logical_id: str, name: str) -> str:
    """The template's table `logical_id` (its key schema, attributes and billing mode), named `name`."""
    definition = template.tables(template.load())[logical_id]
    boto3.client("dynamodb", region_name=REGION).create_table(TableName=name, **definition)
    return name


def create_history_table(name: str = "scaler-history") -> str:
    return create_table("HistoryTable", name)


def create_group(name: str, desired: int = 0, max_size: int = 20) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    # One launch template serves every group of a test.
    with contextlib.suppress(ec2.exceptions.ClientError):
        ec2.create_launch_template(
            LaunchTemplateName="workers",
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t4g.small"},
        )
    boto3.client("autoscaling", region_name=REGION).create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": "workers", "Version": "$Latest"},
        MinSize=0,
        MaxSize=max_size,
        DesiredCapacity=desired,
        AvailabilityZones=[f"{REGION}a"],
    )


def desired_of(group: str) -> int:
    groups = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[group]
    )["AutoScalingGroups"]
    return int(groups[0]["DesiredCapacity"])


def create_queue(name: str, messages: int = 0) -> str:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for start in range(0, messages, 10):
        batch = [{"Id": str(i), "MessageBody": json.dumps({"n": i})} for i in range(start, min(start + 10, messages))]
        sqs.send_message_batch(QueueUrl=url, Entries=batch)  # type: ignore[arg-type]
    return url


def pool_config(name: str, queues: list[tuple[str, str, float]], **more: Any) -> dict[str, Any]:
    """A pool entry: queues as (name, url, target_per_instance)."""
    return {
        "name": name,
        "max_size": 20,
        "queues": [{"name": q, "url": u, "target_per_instance": t} for q, u, t in queues],
    } | more


def put_config(parameter: str, pools: list[dict[str, Any]]) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=parameter, Value=json.dumps({"pools": pools}), Type="String", Overwrite=True
    )


def create_ledger_table(name: str = "ledger") -> str:
    return create_table("LedgerTable", name)


def create_parking_table(name: str = "parked") -> str:
    return create_table("ParkingTable", name)


def parked_items(table: str = "parked") -> list[dict[str, Any]]:
    pages = boto3.client("dynamodb", region_name=REGION).get_paginator("scan").paginate(TableName=table)
    return [item for page in pages for item in page["Items"]]


def create_notice_topic(name: str = "notices") -> tuple[str, str]:
    """The users' topic, with an SQS queue subscribed so that a test can count what was published."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name=name)["TopicArn"]
    url = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return topic, url


def drain(url: str) -> list[str]:
    """Every message body in the queue, deleting them (moto's counts are exact, so nothing is missed)."""
    sqs = boto3.client("sqs", region_name=REGION)
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def create_actions_table(name: str = "lifecycle-actions") -> str:
    return create_table("LifecycleActionsTable", name)


def instances_of(group: str) -> list[str]:
    groups = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[group]
    )["AutoScalingGroups"]
    return [i["InstanceId"] for i in groups[0]["Instances"]]

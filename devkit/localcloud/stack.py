"""The stack's resources on the local cloud: the same pools, queues, groups and hooks the template makes.

Time is compressed (seconds instead of minutes) through LocalSettings, never by changing what exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from devkit import template
from queue_scaler.config import PoolConfig, ScalerConfig

PLANS = ("enterprise", "studio", "pro", "starter", "free")
LAUNCH_HOOK = "launch-readiness"
TERMINATE_HOOK = "terminate-drain"


@dataclass(frozen=True)
class LocalSettings:
    """The knobs of the local cloud: compressed time and small fleets."""

    stack: str = "queue-scaler-local"
    region: str = "us-east-1"
    boot_seconds: float = 3.0
    schedule_seconds: float = 5.0
    #: The lifecycle reconciler's schedule (rate(1 minute) on AWS).
    reconcile_seconds: int = 2
    tick_seconds: float = 1.0
    scale_down_window_seconds: float = 15.0
    drain_seconds: int = 5
    visibility_timeout: int = 10
    retry_delay_seconds: int = 1
    max_receive_count: int = 2
    worker_slots: int = 2
    launch_hook_timeout: int = 60
    max_sizes: dict[str, int] = field(default_factory=lambda: {"messaging": 2, "video": 6, "ai": 4})

    @property
    def terminate_hook_timeout(self) -> int:
        # The template's rule: at least 2 x (drain + 20) so a drain never races the hook's timeout.
        return int(2 * (self.drain_seconds + 20))


@dataclass
class PoolResources:
    config: PoolConfig
    queue_urls: list[str]  # highest priority first
    dlq_urls: list[str]


@dataclass
class LocalStack:
    settings: LocalSettings
    pools: dict[str, PoolResources]
    history_table: str
    config_parameter: str

    @property
    def scaler_config(self) -> ScalerConfig:
        return ScalerConfig(pools=[p.config for p in self.pools.values()])

    def queue_names(self) -> dict[str, str]:
        """Queue URL by queue name, DLQs included."""
        names: dict[str, str] = {}
        for pool in self.pools.values():
            for url in pool.queue_urls + pool.dlq_urls:
                names[url.rsplit("/", 1)[-1]] = url
        return names


def pool_specs(settings: LocalSettings) -> list[dict[str, Any]]:
    """The template's pools with its default parameters: messaging (one worker always idle), video and
    ai from zero, one queue per plan. Only max sizes and the scale-down window are the local cloud's own
    (a laptop runs a few workers; time is compressed)."""
    defaults = template.load()
    prefix = settings.stack
    down = {"stabilization_window_seconds": settings.scale_down_window_seconds}
    specs: list[dict[str, Any]] = [
        {
            "name": "messaging",
            "auto_scaling_group": f"{prefix}-messaging",
            "min_size": int(template.parameter_default(defaults, "MessagingMinSize")),
            "max_size": settings.max_sizes["messaging"],
            "queues": [
                {
                    "name": f"{prefix}-messaging-jobs",
                    "target_per_instance": float(template.parameter_default(defaults, "MessagingTargetPerInstance")),
                }
            ],
            "behavior": {"scale_down": down},
        }
    ]
    for pool, key in (("video", "Video"), ("ai", "Ai")):
        targets = [float(t) for t in str(template.parameter_default(defaults, f"{key}TargetsPerInstance")).split(",")]
        specs.append(
            {
                "name": pool,
                "auto_scaling_group": f"{prefix}-{pool}",
                "min_size": int(template.parameter_default(defaults, f"{key}MinSize")),
                "max_size": settings.max_sizes[pool],
                "queues": [
                    {"name": f"{prefix}-{pool}-{plan}", "target_per_instance": target}
                    for plan, target in zip(PLANS, targets, strict=True)
                ],
                "behavior": {"scale_down": down},
            }
        )
    return specs


def config_parameter(settings: LocalSettings) -> str:
    """The SSM parameter the scaler reads, named as the template names it."""
    return f"/queue-scaler/{settings.stack}/pools"


def history_table(settings: LocalSettings) -> str:
    return f"{settings.stack}-history"


def actions_table(settings: LocalSettings) -> str:
    return f"{settings.stack}-lifecycle-actions"


def ledger_table(settings: LocalSettings) -> str:
    return f"{settings.stack}-ledger"


def parking_table(settings: LocalSettings) -> str:
    return f"{settings.stack}-parked-dead-letters"


def notice_topic_arn(settings: LocalSettings) -> str:
    return f"arn:aws:sns:{settings.region}:123456789012:{settings.stack}-notices"


def template_refs(settings: LocalSettings) -> dict[str, str]:
    """What the template's references resolve to on the local cloud (for functions' environments)."""
    refs = {
        "AWS::Region": settings.region,
        "AWS::StackName": settings.stack,
        "AWS::AccountId": "123456789012",
        "EnvironmentName": "local",
        "PoolConfigParameter": config_parameter(settings),
        "HistoryTable": history_table(settings),
        "LifecycleActionsTable": actions_table(settings),
        "DrainSeconds": str(int(settings.drain_seconds)),
        "MaxReceiveCount": str(settings.max_receive_count),
        "HealthCheckGracePeriodSeconds": str(settings.launch_hook_timeout),
        "LedgerTable": ledger_table(settings),
        "ParkingTable": parking_table(settings),
        "NoticeTopic": notice_topic_arn(settings),
    }
    for pool, key in (("messaging", "Messaging"), ("video", "Video"), ("ai", "Ai")):
        refs[f"{key}Pool.Outputs.GroupName"] = f"{settings.stack}-{pool}"
        refs[f"{key}Pool.Outputs.TerminateHookTimeoutSeconds"] = str(settings.terminate_hook_timeout)
    return refs


def create(settings: LocalSettings, endpoint_url: str) -> LocalStack:
    """Create every resource on the emulator at `endpoint_url` and store the scaler's configuration."""
    session = boto3.session.Session(region_name=settings.region)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    ec2 = session.client("ec2", endpoint_url=endpoint_url)
    asg = session.client("autoscaling", endpoint_url=endpoint_url)
    ddb = session.client("dynamodb", endpoint_url=endpoint_url)
    ssm = session.client("ssm", endpoint_url=endpoint_url)

    template = ec2.create_launch_template(
        LaunchTemplateName=f"{settings.stack}-workers",
        LaunchTemplateData={
            "ImageId": "ami-12c6146b",
            "InstanceType": "t4g.small",
            "MetadataOptions": {"HttpTokens": "required"},
        },
    )["LaunchTemplate"]["LaunchTemplateId"]

    pools: dict[str, PoolResources] = {}
    for spec in pool_specs(settings):
        queues: list[dict[str, Any]] = []
        queue_urls, dlq_urls = [], []
        for queue in spec["queues"]:
            dlq_url = sqs.create_queue(QueueName=f"{queue['name']}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            url = sqs.create_queue(
                QueueName=queue["name"],
                Attributes={
                    "VisibilityTimeout": str(settings.visibility_timeout),
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
                    ),
                },
            )["QueueUrl"]
            queues.append({**queue, "url": url})
            queue_urls.append(url)
            dlq_urls.append(dlq_url)
        config = PoolConfig.model_validate({**spec, "queues": queues})
        asg.create_auto_scaling_group(
            AutoScalingGroupName=config.group_name,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
            MinSize=config.min_size,
            MaxSize=config.max_size,
            DesiredCapacity=0,
            AvailabilityZones=[f"{settings.region}a"],
        )
        asg.put_lifecycle_hook(
            LifecycleHookName=LAUNCH_HOOK,
            AutoScalingGroupName=config.group_name,
            LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
            HeartbeatTimeout=settings.launch_hook_timeout,
            DefaultResult="ABANDON",
        )
        asg.put_lifecycle_hook(
            LifecycleHookName=TERMINATE_HOOK,
            AutoScalingGroupName=config.group_name,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            HeartbeatTimeout=settings.terminate_hook_timeout,
            DefaultResult="CONTINUE",
        )
        # Hooks in place first, then the minimum: the messaging pool's idle worker also goes through them.
        asg.update_auto_scaling_group(AutoScalingGroupName=config.group_name, DesiredCapacity=config.min_size)
        pools[config.name] = PoolResources(config, queue_urls, dlq_urls)

    ddb.create_table(
        TableName=history_table(settings),
        KeySchema=[{"AttributeName": "pool", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pool", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName=actions_table(settings),
        KeySchema=[
            {"AttributeName": "instance_id", "KeyType": "HASH"},
            {"AttributeName": "action", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "instance_id", "AttributeType": "S"},
            {"AttributeName": "action", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName=ledger_table(settings),
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName=parking_table(settings),
        KeySchema=[{"AttributeName": "message_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "message_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    session.client("sns", endpoint_url=endpoint_url).create_topic(Name=f"{settings.stack}-notices")
    stack = LocalStack(settings, pools, history_table(settings), config_parameter(settings))
    ssm.put_parameter(
        Name=stack.config_parameter,
        Value=stack.scaler_config.model_dump_json(exclude_defaults=False),
        Type="String",
        Overwrite=True,
    )
    return stack

"""The stack's resources on the local cloud: the same pools, queues, groups and hooks the template makes.

Time is compressed (seconds instead of minutes) through LocalSettings, never by changing what exists.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from devkit import stackmodel, template
from queue_scaler.scaling.config import ScalerConfig
from queue_scaler.scaling.domain.pool import PoolConfig

#: Another transformed-templates file for the local cloud (a test's deliberately broken copy).
TEMPLATES_ENV = "QS_LOCAL_TEMPLATES"
LAUNCH_HOOK = "launch-readiness"
TERMINATE_HOOK = "terminate-drain"
#: templates/pool.yaml's WarmPoolState values that make a warm pool (PutWarmPool's PoolState).
WARM_POOL_STATES = ("Stopped", "Hibernated", "Running")
#: The design's cold boot, 60-180 s (docs/design): its middle is what a local cold boot stands for.
DESIGN_COLD_BOOT_SECONDS = 120.0


@dataclass(frozen=True)
class WarmPoolSettings:
    """A pool's warm pool, as templates/pool.yaml's parameters set it (WarmPoolState, WarmPoolMinSize,
    WarmPoolMaxPreparedCapacity, WarmPoolReuseOnScaleIn) and its AWS::AutoScaling::WarmPool makes it."""

    state: str = "Stopped"
    min_size: int = 0
    #: MaxGroupPreparedCapacity; -1 for AWS's default (the group's MaxSize).
    max_prepared_capacity: int = -1
    reuse_on_scale_in: bool = False

    def put_warm_pool_arguments(self, group_name: str) -> dict[str, Any]:
        """PutWarmPool's arguments, as the template's WarmPool resource passes them."""
        arguments: dict[str, Any] = {
            "AutoScalingGroupName": group_name,
            "PoolState": self.state,
            "MinSize": self.min_size,
            "InstanceReusePolicy": {"ReuseOnScaleIn": self.reuse_on_scale_in},
        }
        if self.max_prepared_capacity != -1:
            arguments["MaxGroupPreparedCapacity"] = self.max_prepared_capacity
        return arguments


@dataclass(frozen=True)
class LocalSettings:
    """The knobs of the local cloud: compressed time and small fleets."""

    stack: str = "queue-scaler-local"
    region: str = "us-east-1"
    boot_seconds: float = 3.0
    schedule_seconds: float = 5.0
    #: The lifecycle reconciler's schedule (rate(1 minute) on AWS).
    reconcile_seconds: int = 2
    #: Whether that schedule fires (off: only `invoke` reconciles, as `local up --no-reconcile` asks).
    reconcile_schedule: bool = True
    tick_seconds: float = 1.0
    #: Seconds of the deployed policy per local second: the pools' windows and job times are the
    #: stack's divided by this (a minute becomes a second), as `pool_specs` applies it.
    time_compression: float = 60.0
    drain_seconds: int = 5
    #: A Spot interruption's notice: 120 s on EC2, compressed (it must exceed the workers' release
    #: margin, queue_scaler/lifecycle/domain/deadlines.py, for them to release anything before the reclaim).
    spot_notice_seconds: float = 30.0
    visibility_timeout: int = 10
    retry_delay_seconds: int = 1
    max_receive_count: int = 2
    worker_slots: int = 2
    launch_hook_timeout: int = 60
    #: Fault injection: lifecycle events of these detail-types are lost before they reach the queue
    #: (as an EventBridge delivery that never happened); the reconciler must find their instances.
    drop_lifecycle_events: tuple[str, ...] = ()
    #: A laptop's fleet: each pool's MaxSize on the local cloud (`default_max_size` for a pool not named).
    max_sizes: dict[str, int] = field(default_factory=lambda: {"messaging": 2, "video": 6, "ai": 4})
    default_max_size: int = 2
    #: Pools with a warm pool (none by default, as the template's WarmPoolState "off"): their group
    #: launches On-Demand from its plain launch template, as the template's rule WarmPoolIsOnDemand asks.
    warm_pools: dict[str, WarmPoolSettings] = field(default_factory=dict)

    @property
    def warm_start_seconds(self) -> float:
        """A warm start's boot on the local cloud: the cold boot scaled as the simulator's warm start
        (devkit/sim/billing.py WARM_START_SECONDS, 36 s, AWS's workshop figure for a Stopped pool) is to
        the design's cold boot (60-180 s, its middle)."""
        from devkit.sim.billing import WARM_START_SECONDS

        return self.boot_seconds * WARM_START_SECONDS / DESIGN_COLD_BOOT_SECONDS

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


def templates_path() -> Path:
    return Path(os.environ.get(TEMPLATES_ENV) or stackmodel.TRANSFORMED)


def local_stack(settings: LocalSettings, path: Path | None = None) -> stackmodel.Stack:
    """The stack tree as the local cloud deploys it: its stack name and region, its resource names."""
    chosen = path or templates_path()
    templates = stackmodel.load_templates(chosen, check_sources=chosen == stackmodel.TRANSFORMED)
    image = f"{stackmodel.ACCOUNT}.dkr.ecr.{settings.region}.amazonaws.com/queue-worker:local"
    parameters = {
        "EnvironmentName": "dev",
        "AlarmEmail": "on-call@example.com",
        "SubnetIds": ["subnet-0local"],
        "WorkerSecurityGroupId": "sg-0local",
        "WorkerEnvParameterPath": f"/queue-scaler/{settings.stack}/workers",
    } | {f"{pool.prefix}ImageUri": image for pool in template.pools(template.load())}
    names = {
        "HistoryTable": history_table(settings),
        "LifecycleActionsTable": actions_table(settings),
        "LedgerTable": ledger_table(settings),
        "ParkingTable": parking_table(settings),
        "NoticeTopic": f"{settings.stack}-notices",
    }
    return stackmodel.root_stack(templates, parameters, settings.stack, settings.region, names)


def deployed_pools(settings: LocalSettings) -> list[dict[str, Any]]:
    """The pools' configuration exactly as the stack writes it to its configuration parameter
    (/queue-scaler/<stack>/pools: the template's PoolConfigParameter with every pool parameter at
    its default, instantiated by devkit/stackmodel.py), queue URLs as AWS would give them."""
    value = local_stack(settings).resources()["PoolConfigParameter"].properties["Value"]
    pools: list[dict[str, Any]] = json.loads(value)["pools"]
    return pools


#: The pool fields that are durations in seconds: the local cloud compresses them (`time_compression`).
_DURATIONS = ("seconds_per_message",)


def _compressed(value: Any, factor: float, key: str = "") -> Any:
    """`value` with every duration (a field named *_seconds, or one of `_DURATIONS`) divided by `factor`."""
    if isinstance(value, dict):
        return {k: _compressed(v, factor, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_compressed(v, factor, key) for v in value]
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (key.endswith("_seconds") or key in _DURATIONS)
    ):
        return value / factor
    return value


def localize(pool: dict[str, Any], settings: LocalSettings) -> dict[str, Any]:
    """A deployed pool's configuration on the local cloud, changed only where a laptop must differ:
    its max size (`max_sizes`), the slots its local workers run (`worker_slots`), and every duration
    compressed (`time_compression`: the policy's windows and the pool's mean job time). Its queue
    URLs are set when the local queues are created. The policy itself (the recommended setting the
    template deploys) is unchanged: tests/contract/test_local_derivation.py checks it."""
    compressed: dict[str, Any] = _compressed(pool, settings.time_compression)
    max_size = settings.max_sizes.get(pool["name"], settings.default_max_size)
    return compressed | {"max_size": max_size, "slots_per_instance": settings.worker_slots}


def pool_specs(settings: LocalSettings) -> list[dict[str, Any]]:
    """The local cloud's pools: the stack's own configuration document (`deployed_pools`), localized.
    Queues and groups are named as templates/pool.yaml names them."""
    return [localize(pool, settings) for pool in deployed_pools(settings)]


def scale_down_window_seconds(settings: LocalSettings) -> float:
    """The longest scale-down stabilization window of the local pools (what the demo's timeline draws)."""
    return max(
        PoolConfig.model_validate(spec).behavior.scale_down.stabilization_window_seconds
        for spec in pool_specs(settings)
    )


def config_parameter(settings: LocalSettings) -> str:
    """The SSM parameter the scaler reads, named as the template names it."""
    return f"/queue-scaler/{settings.stack}/pools"


def measured_config_parameter(settings: LocalSettings) -> str:
    """The SSM parameter MetricsFunction reads (every pool), named as the template names it."""
    return f"/queue-scaler/{settings.stack}/measured-pools"


def history_table(settings: LocalSettings) -> str:
    return f"{settings.stack}-history"


def actions_table(settings: LocalSettings) -> str:
    return f"{settings.stack}-lifecycle-actions"


def lifecycle_events_queue(settings: LocalSettings) -> str:
    """LifecycleEventsQueue's name (the template's "${AWS::StackName}-lifecycle-events")."""
    return f"{settings.stack}-lifecycle-events"


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
        "MetricsPoolConfigParameter": measured_config_parameter(settings),
        "HistoryTable": history_table(settings),
        "LifecycleActionsTable": actions_table(settings),
        "MaxReceiveCount": str(settings.max_receive_count),
        "HealthCheckGracePeriodSeconds": str(settings.launch_hook_timeout),
        "LedgerTable": ledger_table(settings),
        "ParkingTable": parking_table(settings),
        "NoticeTopic": notice_topic_arn(settings),
    }
    for pool in template.pools(template.load()):
        refs[f"{pool.prefix}DrainSeconds"] = str(int(settings.drain_seconds))
        refs[f"{pool.logical_id}.Outputs.GroupName"] = f"{settings.stack}-{pool.name}"
        refs[f"{pool.logical_id}.Outputs.TerminateHookTimeoutSeconds"] = str(settings.terminate_hook_timeout)
        refs[f"{pool.logical_id}.Outputs.TrackedName"] = ""  # the scaler sizes every local pool
    return refs


def partition_keys(settings: LocalSettings) -> dict[str, str]:
    """Each local table's partition (HASH) key attribute, by table name, from the template: what IAM's
    `dynamodb:LeadingKeys` condition key is read from."""
    names = template_refs(settings)
    return {
        names[logical_id]: next(k["AttributeName"] for k in definition["KeySchema"] if k["KeyType"] == "HASH")
        for logical_id, definition in template.tables(template.load()).items()
        if logical_id in names
    }


def create_tables(dynamodb: Any, names: dict[str, str]) -> None:
    """Every DynamoDB table of the template, as the template declares it, named by `names` (logical id
    to name). A table the template has and `names` lacks is an error: nothing is left out silently."""
    for logical_id, definition in template.tables(template.load()).items():
        if logical_id not in names:
            raise template.UnresolvedReference(f"the local cloud provides no name for table {logical_id!r}")
        dynamodb.create_table(TableName=names[logical_id], **definition)


def create(settings: LocalSettings, endpoint_url: str) -> LocalStack:
    """Create every resource on the emulator at `endpoint_url` and store the scaler's configuration."""
    session = boto3.session.Session(region_name=settings.region)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    ec2 = session.client("ec2", endpoint_url=endpoint_url)
    asg = session.client("autoscaling", endpoint_url=endpoint_url)
    ddb = session.client("dynamodb", endpoint_url=endpoint_url)
    ssm = session.client("ssm", endpoint_url=endpoint_url)

    # First: the launch of messaging's minimum instance already sends a lifecycle event to it.
    events_dlq = sqs.create_queue(QueueName=f"{lifecycle_events_queue(settings)}-dlq")["QueueUrl"]
    events_dlq_arn = sqs.get_queue_attributes(QueueUrl=events_dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName=lifecycle_events_queue(settings),
        Attributes={
            "VisibilityTimeout": "10",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": events_dlq_arn, "maxReceiveCount": 5}),
        },
    )

    launch_template = ec2.create_launch_template(
        LaunchTemplateName=f"{settings.stack}-workers",
        LaunchTemplateData={
            "ImageId": "ami-12c6146b",
            "InstanceType": "c7g.medium",
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
            queues.append(queue | {"url": url})
            queue_urls.append(url)
            dlq_urls.append(dlq_url)
        config = PoolConfig.model_validate({**spec, "queues": queues})
        warm_pool = settings.warm_pools.get(config.name)
        # Spot-ready as the template's groups are (several types, capacity rebalancing); with a warm
        # pool, the template's plain launch template, On-Demand (AWS allows no warm pool otherwise).
        launch: dict[str, Any] = {"MixedInstancesPolicy": _mixed_instances_policy(launch_template)}
        if warm_pool is not None:
            launch = {"LaunchTemplate": {"LaunchTemplateId": launch_template, "Version": "1"}}
        asg.create_auto_scaling_group(
            AutoScalingGroupName=config.group_name,
            **launch,
            CapacityRebalance=warm_pool is None,
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
        if warm_pool is not None:
            asg.put_warm_pool(**warm_pool.put_warm_pool_arguments(config.group_name))
        asg.update_auto_scaling_group(AutoScalingGroupName=config.group_name, DesiredCapacity=config.min_size)
        pools[config.name] = PoolResources(config, queue_urls, dlq_urls)

    create_tables(ddb, template_refs(settings))
    session.client("sns", endpoint_url=endpoint_url).create_topic(Name=f"{settings.stack}-notices")
    stack = LocalStack(settings, pools, history_table(settings), config_parameter(settings))
    # Every local pool is sized by the scaler: the pools MetricsFunction measures are the same.
    for name in (stack.config_parameter, measured_config_parameter(settings)):
        ssm.put_parameter(
            Name=name,
            Value=stack.scaler_config.model_dump_json(exclude_defaults=False),
            Type="String",
            Overwrite=True,
        )
    return stack


def _mixed_instances_policy(launch_template: str) -> dict[str, Any]:
    return {
        "LaunchTemplate": {
            # Pinned by number, as the template pins LatestVersionNumber: instances of an older
            # version are then told apart (new_image, below).
            "LaunchTemplateSpecification": {"LaunchTemplateId": launch_template, "Version": "1"},
            "Overrides": [{"InstanceType": "c7g.medium"}, {"InstanceType": "c6g.medium"}],
        },
        "InstancesDistribution": {
            "OnDemandBaseCapacity": 0,
            "OnDemandPercentageAboveBaseCapacity": 30,
            "SpotAllocationStrategy": "price-capacity-optimized",
        },
    }


def new_image(autoscaling: Any, ec2: Any, group_name: str, image_id: str = "ami-0fe1c0a1e2b3c4d5e") -> str:
    """What a deploy with a new AMI or image URI does to one pool's group: a new launch template version,
    written into the group by number (CloudFormation's `LatestVersionNumber`), nothing else. The group's
    instances keep their version until the scaler's instance refresh replaces them. Returns the version."""
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"][0]
    # A group with a warm pool launches from its plain launch template; the others from their mixed policy.
    policy = group.get("MixedInstancesPolicy")
    spec = group["LaunchTemplate"] if policy is None else policy["LaunchTemplate"]["LaunchTemplateSpecification"]
    template_id = spec["LaunchTemplateId"]
    created = ec2.create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion=str(spec["Version"]), LaunchTemplateData={"ImageId": image_id}
    )
    version = str(created["LaunchTemplateVersion"]["VersionNumber"])
    # The id alone: UpdateAutoScalingGroup refuses a specification that names both the id and the name.
    pinned = {"LaunchTemplateId": template_id, "Version": version}
    if policy is None:
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=group_name, LaunchTemplate=pinned)
        return version
    policy["LaunchTemplate"]["LaunchTemplateSpecification"] = pinned
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=group_name, MixedInstancesPolicy=policy)
    return version

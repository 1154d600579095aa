"""`queue-scaler preflight --config-env ENV` against a moto account: each missing prerequisite by name.

moto answers EC2, ECR, Lambda's account settings and (for VPC only) Service Quotas; the EC2 vCPU quota
is answered here through a botocore hook, as Service Quotas would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit import preflight
from devkit.cli import main

REGION = "us-east-1"
ACCOUNT = "123456789012"
POOLS = ("messaging", "video", "ai")


def image_uri(pool: str) -> str:
    return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/queue-scaler-{pool}:v1"


def write_samconfig(path: Path, subnets: list[str], group: str, email: str = "oncall@corp.test") -> Path:
    overrides = [
        "EnvironmentName=dev",
        f"AlarmEmail={email}",
        f"SubnetIds={','.join(subnets)}",
        f"WorkerSecurityGroupId={group}",
        "WorkerEnvParameterPath=/queue-scaler/dev/workers",
        *(f"{pool.capitalize()}ImageUri={image_uri(pool)}" for pool in POOLS),
    ]
    path.write_text(
        '[dev.deploy.parameters]\nstack_name = "queue-scaler-dev"\n'
        f'region = "{REGION}"\nparameter_overrides = {json.dumps(overrides)}\n',
        encoding="utf-8",
    )
    return path


def manifest_list(*architectures: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "digest": f"sha256:{str(i) * 64}",
                    "size": 1000,
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for i, arch in enumerate(architectures, start=1)
            ],
        }
    )


def push(pool: str, *architectures: str) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.create_repository(repositoryName=f"queue-scaler-{pool}")
    ecr.put_image(
        repositoryName=f"queue-scaler-{pool}",
        imageManifest=manifest_list(*architectures),
        imageManifestMediaType="application/vnd.docker.distribution.manifest.list.v2+json",
        imageTag="v1",
    )


class _Ok:
    status_code = 200


@pytest.fixture
def quotas(aws: None) -> Iterator[Callable[[float, int], None]]:
    """Answer the two quotas moto does not know, as AWS would: Service Quotas' EC2 vCPU quota and
    Lambda's account concurrency limit (GetAccountSettings)."""
    value: dict[str, float] = {}

    def vcpus(params: dict[str, Any], **_: Any) -> Any:
        sent = json.loads(params["body"])
        if (sent["ServiceCode"], sent["QuotaCode"]) != preflight.VCPU_QUOTA:
            return None
        return _Ok(), {"Quota": {"ServiceCode": "ec2", "QuotaCode": sent["QuotaCode"], "Value": value["vcpus"]}}

    def account(**_: Any) -> Any:
        return _Ok(), {"AccountLimit": {"ConcurrentExecutions": int(value["lambda"])}, "AccountUsage": {}}

    real = boto3.session.Session

    class Session(real):  # type: ignore[misc, valid-type]
        def client(self, service: str, *args: Any, **kwargs: Any) -> Any:
            made = super().client(service, *args, **kwargs)
            made.meta.events.register("before-call.service-quotas.GetServiceQuota", vcpus)
            made.meta.events.register("before-call.lambda.GetAccountSettings", account)
            return made

    def set_quotas(vcpu_quota: float, lambda_limit: int) -> None:
        value.update(vcpus=vcpu_quota, **{"lambda": lambda_limit})

    boto3.session.Session = Session  # type: ignore[misc]
    try:
        yield set_quotas
    finally:
        boto3.session.Session = real  # type: ignore[misc]


def network(with_nat: bool, endpoints: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """A VPC with two private subnets, a security group, and either a NAT route or these endpoints."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for i, zone in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="workers", Description="workers", VpcId=vpc)["GroupId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    if with_nat:
        public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.9.0/24")["Subnet"]["SubnetId"]
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    for service in endpoints:
        kind = "Gateway" if service in {"s3", "dynamodb"} else "Interface"
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.{service}", VpcEndpointType=kind)
    return subnets, group


def run(samconfig: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["preflight", "--config-env", "dev", "--samconfig", str(samconfig)])
    return code, capsys.readouterr().out.splitlines()


def gap_names(lines: list[str]) -> set[str]:
    return {line[6:].split(":", 1)[0] for line in lines if line.startswith("gap ")}


def test_given_an_empty_account_then_each_missing_prerequisite_is_named_and_it_exits_1(
    quotas: Callable[[float, int], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quotas(5, 10)
    samconfig = write_samconfig(tmp_path / "samconfig.toml", ["subnet-0abc0abc0abc0abc1"], "sg-0abc0abc0abc0abc1",
                                email="oncall-dev@example.com")  # fmt: skip

    code, lines = run(samconfig, capsys)

    assert code == 1
    assert gap_names(lines) == {
        "subnets", "security group", "messaging image", "video image", "ai image", "vCPU quota", "alarm email",
    }  # fmt: skip
    assert "check Lambda concurrency" not in "\n".join(lines)
    text = "\n".join(lines)
    assert "subnet-0abc0abc0abc0abc1 not found in us-east-1" in text
    assert "repository queue-scaler-video does not exist" in text
    assert "samconfig's example" in text
    assert lines[-1].startswith("preflight dev: 7 missing prerequisite(s)")


def test_given_an_account_with_everything_then_nothing_is_missing_and_it_exits_0(
    quotas: Callable[[float, int], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quotas(256, 1000)
    subnets, group = network(with_nat=True)
    for pool in POOLS:
        push(pool, "amd64", "arm64")

    code, lines = run(write_samconfig(tmp_path / "samconfig.toml", subnets, group), capsys)

    assert gap_names(lines) == set(), lines
    assert [line for line in lines if line.startswith("check")] == [], lines
    assert code == 0
    assert lines[-1] == "preflight dev: nothing missing"


def test_given_private_subnets_without_some_endpoints_and_an_amd64_image_then_those_are_named(
    quotas: Callable[[float, int], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quotas(256, 1000)
    present = tuple(s for s in preflight.ENDPOINT_SERVICES if s not in {"ecr.dkr", "ssmmessages"})
    subnets, group = network(with_nat=False, endpoints=present)
    push("messaging", "arm64")
    push("video", "amd64")
    push("ai", "arm64")

    code, lines = run(write_samconfig(tmp_path / "samconfig.toml", subnets, group), capsys)

    assert code == 1
    assert gap_names(lines) == {f"network {subnets[0]}", f"network {subnets[1]}", "video image"}
    text = "\n".join(lines)
    assert f"com.amazonaws.{REGION}.ecr.dkr, com.amazonaws.{REGION}.ssmmessages" in text
    assert "has no arm64 manifest (found: amd64)" in text


def test_given_a_misspelt_environment_then_it_exits_2_naming_the_ones_that_exist(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["preflight", "--config-env", "dve"])
    assert code == 2
    assert "no [dve.deploy.parameters]; environments: dev, prod, staging" in capsys.readouterr().err

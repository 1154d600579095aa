"""What an account must have before `sam deploy --config-env ENV` can give working workers.

`queue-scaler preflight --config-env ENV` reads the environment's parameters from samconfig.toml
(over the template's defaults) and, with the caller's AWS credentials, reads (never writes) the
account: the workers' subnets and security group, each pool's image in ECR and its architecture,
the network paths the boot and the worker need (a NAT or internet route, or a VPC endpoint per
service), the Lambda and vCPU quotas, and the alarm address. Each missing prerequisite is one line
naming it and what to do; the command exits 1 when there is any, 0 when there is none.

A check that cannot be made (an API the caller may not call, a quota Service Quotas does not report)
is printed as `check` with the reason: it is not counted as a gap, since the deploy may still work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devkit import template as template_module

#: The services the boot (user data) and the worker call, as VPC endpoint service names (without the
#: `com.amazonaws.REGION.` prefix): ECR's API and registry, S3 for ECR's layers and dnf's mirrors, the
#: worker's queues and ledger, its scale-in protection, Run Command's agent, and the log driver.
ENDPOINT_SERVICES = (
    "s3",
    "ecr.api",
    "ecr.dkr",
    "sqs",
    "dynamodb",
    "autoscaling",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "logs",
)
#: Service Quotas codes: EC2 "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances" (vCPUs).
VCPU_QUOTA = ("ec2", "L-1216C47A")
#: Lambda keeps this much of the account's concurrency unreserved; a reservation must leave it.
LAMBDA_UNRESERVED = 100
#: The functions' concurrent executions at once with the default pools (README, "Account quotas").
LAMBDA_NEEDED = 10
_ARM64 = {"arm64", "aarch64"}
_TIMEOUTS = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})


@dataclass(frozen=True)
class Finding:
    """One check's result: `ok`, `gap` (a missing prerequisite) or `check` (could not be verified)."""

    status: str
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<5} {self.name}: {self.detail}"


@dataclass(frozen=True)
class PoolNeeds:
    name: str
    image_uri: str
    instance_types: tuple[str, ...]
    max_size: int


@dataclass(frozen=True)
class Environment:
    """The environment's deploy settings: samconfig's parameters over the template's defaults."""

    name: str
    region: str
    parameters: dict[str, str]
    pools: tuple[PoolNeeds, ...]

    @property
    def subnets(self) -> list[str]:
        return [s for s in self.parameters.get("SubnetIds", "").split(",") if s]


_POOL_NEEDS = ("PoolName", "ImageUri", "InstanceTypes", "MaxSize")


class PreflightError(Exception):
    """The preflight cannot run (an unknown environment, a missing samconfig): exit 2."""


def load_environment(config_env: str, samconfig: Path, region: str | None = None) -> Environment:
    """The environment `config_env` of `samconfig`, refused by name when it has no deploy table
    (SAM itself silently ignores a misspelt --config-env and asks for every parameter)."""
    import tomllib

    try:
        config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PreflightError(f"cannot read {samconfig}: {error}") from error
    known = sorted(n for n, t in config.items() if isinstance(t, dict) and "deploy" in t)
    if config_env not in known:
        raise PreflightError(f"{samconfig} has no [{config_env}.deploy.parameters]; environments: {', '.join(known)}")
    deploy = config[config_env]["deploy"]["parameters"]
    overrides = deploy.get("parameter_overrides", [])
    items = overrides if isinstance(overrides, list) else str(overrides).split()
    template = template_module.load()
    values = {n: str(p["Default"]) for n, p in template["Parameters"].items() if "Default" in p}
    values |= dict(str(item).split("=", 1) for item in items)
    pools = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::Serverless::Application" or properties.get("Location") != "templates/pool.yaml":
            continue
        given = properties["Parameters"]
        value = {
            k: template_module.resolve(given[k], values) for k in ("PoolName", "ImageUri", "InstanceTypes", "MaxSize")
        }
        pools.append(
            PoolNeeds(
                name=value["PoolName"],
                image_uri=value["ImageUri"],
                instance_types=tuple(t for t in value["InstanceTypes"].split(",") if t),
                max_size=int(value["MaxSize"]),
            )
        )
    chosen = (
        region
        or deploy.get("region")
        or config.get("default", {}).get("global", {}).get("parameters", {}).get("region")
    )
    if not chosen:
        raise PreflightError(f"no region for {config_env}: set it in {samconfig} or pass --region")
    return Environment(config_env, str(chosen), values, tuple(pools))


Client = Callable[[str], Any]


def _error(error: Exception) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Error')}: {info.get('Message', '')}".rstrip(": ")
    return f"{type(error).__name__}: {error}"


def check_subnets(env: Environment, client: Client) -> list[Finding]:
    if not env.subnets:
        return [Finding("gap", "subnets", "SubnetIds is empty: name the private subnets the workers run in")]
    ec2 = client("ec2")
    found: set[str] = set()
    for subnet in env.subnets:
        try:
            ec2.describe_subnets(SubnetIds=[subnet])
            found.add(subnet)
        except ClientError as error:
            if "NotFound" not in _error(error) and "Malformed" not in _error(error):
                return [Finding("check", "subnets", f"cannot describe subnets: {_error(error)}")]
    missing = [s for s in env.subnets if s not in found]
    if missing:
        return [Finding("gap", "subnets", f"{', '.join(missing)} not found in {env.region}: fix SubnetIds")]
    return [Finding("ok", "subnets", ", ".join(env.subnets))]


def check_security_group(env: Environment, client: Client) -> list[Finding]:
    group = env.parameters.get("WorkerSecurityGroupId", "")
    if not group:
        return [Finding("gap", "security group", "WorkerSecurityGroupId is empty")]
    try:
        client("ec2").describe_security_groups(GroupIds=[group])
    except ClientError as error:
        if "NotFound" in _error(error) or "Malformed" in _error(error):
            return [Finding("gap", "security group", f"{group} not found in {env.region}: fix WorkerSecurityGroupId")]
        return [Finding("check", "security group", f"cannot describe {group}: {_error(error)}")]
    return [Finding("ok", "security group", group)]


_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+)[:@](?P<ref>.+)$"
)


def _architectures(manifest: dict[str, Any]) -> set[str] | None:
    """The platforms of an image index / manifest list; None for a single manifest (its architecture
    is in its config blob, which only a registry pull can read)."""
    entries = manifest.get("manifests")
    if entries is None:
        return None
    return {str(m.get("platform", {}).get("architecture", "")) for m in entries}


def _image(uri: str, region: str, ecr: Any) -> tuple[str, str]:
    """(status, detail) for one pool's image."""
    match = _IMAGE.match(uri)
    if not match:
        return "gap", f"{uri!r} is not an ECR image URI (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG)"
    if match["region"] != region:
        return "gap", f"{uri} is in {match['region']}, the stack in {region}: push the image to {region}'s ECR"
    ref = match["ref"]
    image_id = {"imageDigest": ref} if ref.startswith("sha256:") else {"imageTag": ref}
    try:
        answer = ecr.batch_get_image(registryId=match["account"], repositoryName=match["repo"], imageIds=[image_id])
    except ClientError as error:
        if "RepositoryNotFound" in _error(error):
            return "gap", f"repository {match['repo']} does not exist: create it and push the arm64 image"
        return "check", f"cannot read {uri}: {_error(error)}"
    images = answer.get("images", [])
    if not images:
        return "gap", f"{uri} not found: push it (built for linux/arm64)"
    return _arm64(uri, images[0].get("imageManifest", "{}"))


def _arm64(uri: str, manifest_text: str) -> tuple[str, str]:
    """(status, detail) for an image that exists, from its manifest."""
    try:
        manifest = json.loads(manifest_text)
    except json.JSONDecodeError:
        manifest = {}
    architectures = _architectures(manifest)
    if architectures is None:
        return "ok", f"{uri} exists (a single-platform manifest: build it with --platform linux/arm64)"
    if architectures & _ARM64:
        return "ok", f"{uri} has an arm64 manifest"
    found = ", ".join(sorted(a for a in architectures if a)) or "none"
    return "gap", f"{uri} has no arm64 manifest (found: {found}); the workers run on Graviton (arm64)"


def check_images(env: Environment, client: Client) -> list[Finding]:
    ecr = client("ecr")
    findings = []
    for pool in env.pools:
        status, detail = _image(pool.image_uri, env.region, ecr)
        findings.append(Finding(status, f"{pool.name} image", detail))
    return findings


def _routes_out(ec2: Any, subnet: str, vpc: str) -> bool:
    """Whether the subnet's route table sends 0.0.0.0/0 to a NAT gateway, an internet gateway or an instance."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
    if not tables:  # no explicit association: the VPC's main table applies
        tables = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"]
    for table in tables:
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") != "0.0.0.0/0" or route.get("State", "active") != "active":
                continue
            if (
                route.get("NatGatewayId")
                or str(route.get("GatewayId", "")).startswith("igw-")
                or route.get("InstanceId")
            ):
                return True
    return False


def check_network(env: Environment, client: Client) -> list[Finding]:
    ec2 = client("ec2")
    findings = []
    try:
        subnets = ec2.describe_subnets(SubnetIds=env.subnets)["Subnets"] if env.subnets else []
    except ClientError as error:
        return [Finding("check", "network", f"cannot describe the subnets: {_error(error)}")]
    for subnet in subnets:
        subnet_id, vpc = subnet["SubnetId"], subnet["VpcId"]
        try:
            if _routes_out(ec2, subnet_id, vpc):
                findings.append(Finding("ok", f"network {subnet_id}", "0.0.0.0/0 routes to a NAT or internet gateway"))
                continue
            endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
        except ClientError as error:
            findings.append(
                Finding("check", f"network {subnet_id}", f"cannot read routes or endpoints: {_error(error)}")
            )
            continue
        prefix = f"com.amazonaws.{env.region}."
        have = {
            str(e["ServiceName"]).removeprefix(prefix)
            for e in endpoints
            if e.get("State", "available").lower() in {"available", "pending"}
        }
        missing = [service for service in ENDPOINT_SERVICES if service not in have]
        if missing:
            findings.append(
                Finding(
                    "gap",
                    f"network {subnet_id}",
                    f"no NAT or internet route and no VPC endpoint for {', '.join(prefix + m for m in missing)}",
                )
            )
        else:
            findings.append(Finding("ok", f"network {subnet_id}", "a VPC endpoint for every service the workers call"))
    return findings


def check_quotas(env: Environment, client: Client) -> list[Finding]:
    findings = []
    try:
        limit = int(client("lambda").get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
    except (ClientError, BotoCoreError, KeyError) as error:
        findings.append(Finding("check", "Lambda concurrency", f"cannot read the account's limit: {_error(error)}"))
    else:
        reserved = int(env.parameters.get("ScalerReservedConcurrency", "0") or 0)
        needed = LAMBDA_NEEDED + (reserved + LAMBDA_UNRESERVED if reserved else 0)
        detail = f"limit {limit}, needs {needed}"
        if limit >= needed:
            findings.append(Finding("ok", "Lambda concurrency", detail))
        else:
            hint = "request an increase (Service Quotas, AWS Lambda, Concurrent executions)"
            findings.append(Finding("gap", "Lambda concurrency", f"{detail}: {hint}"))
    types = sorted({t for pool in env.pools for t in pool.instance_types})
    try:
        described = client("ec2").describe_instance_types(InstanceTypes=types)["InstanceTypes"]
        vcpus = {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in described}
    except (ClientError, KeyError) as error:
        findings.append(Finding("check", "vCPU quota", f"cannot describe the instance types: {_error(error)}"))
        return findings
    needed_vcpus = sum(pool.max_size * max(vcpus.get(t, 0) for t in pool.instance_types) for pool in env.pools)
    code = VCPU_QUOTA[1]
    try:
        quota = client("service-quotas").get_service_quota(ServiceCode=VCPU_QUOTA[0], QuotaCode=code)
        value = float(quota["Quota"]["Value"])
    except (ClientError, KeyError) as error:
        findings.append(Finding("check", "vCPU quota", f"needs {needed_vcpus}; cannot read {code}: {_error(error)}"))
        return findings
    detail = f"On-Demand Standard {value:.0f} vCPUs, the pools' max sizes need {needed_vcpus}"
    if value >= needed_vcpus:
        findings.append(Finding("ok", "vCPU quota", detail))
    else:
        findings.append(Finding("gap", "vCPU quota", f"{detail}: request {code} >= {needed_vcpus}, or lower MaxSize"))
    return findings


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_alarm_email(env: Environment, client: Client) -> list[Finding]:
    del client  # nothing to read: the subscription is made by the deploy
    email = env.parameters.get("AlarmEmail", "")
    if not _EMAIL.match(email):
        return [Finding("gap", "alarm email", f"AlarmEmail {email!r} is not an address: no alarm would reach on-call")]
    if email.lower().endswith("@example.com"):
        return [Finding("gap", "alarm email", f"AlarmEmail {email} is samconfig's example: set on-call's address")]
    return [Finding("ok", "alarm email", f"{email} (confirm the SNS subscription after the deploy)")]


CHECKS: Sequence[Callable[[Environment, Client], list[Finding]]] = (
    check_subnets,
    check_security_group,
    check_images,
    check_network,
    check_quotas,
    check_alarm_email,
)


def run(env: Environment, client: Client | None = None) -> list[Finding]:
    """Every check's findings, in order. `client(service)` makes the boto3 clients (tests pass moto's)."""
    session = boto3.session.Session(region_name=env.region)
    make: Client = client or (lambda service: session.client(service, config=_TIMEOUTS))  # type: ignore[call-overload]
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings += check(env, make)
        except (ClientError, BotoCoreError) as error:
            findings.append(Finding("check", check.__name__.removeprefix("check_").replace("_", " "), _error(error)))
    return findings


def gaps(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "gap"]


def summary(findings: Sequence[Finding], env: Mapping[str, Any] | Environment) -> str:
    name = env.name if isinstance(env, Environment) else str(env)
    missing = len(gaps(findings))
    unchecked = sum(1 for f in findings if f.status == "check")
    if missing:
        return f"preflight {name}: {missing} missing prerequisite(s); fix each line marked gap, then run it again"
    tail = f" ({unchecked} could not be checked: see the lines marked check)" if unchecked else ""
    return f"preflight {name}: nothing missing{tail}"

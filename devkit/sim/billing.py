"""What the simulated fleet is billed, and how fast a warm-pool instance starts: every constant the
fleet model's cost and warm starts rest on, with where each comes from (one place; docs/benchmark.md,
"Fleet", cites the same sources).

EC2 bills a running instance by the second; a stopped or hibernated one is not billed as an instance,
only for its EBS volumes ("With stopped instances, you pay only for the volumes that you use and the
Elastic IP addresses attached to the instances": AWS's EC2 Auto Scaling workshop, "Warm pools";
the pool template attaches no Elastic IP). So the benchmark's cost is the instance time of every
running instance (in service, booting, draining, being prepared for a warm pool, or waiting in a
Running warm pool) plus the storage of the instances waiting Stopped or Hibernated, that storage
expressed in seconds of the pool's own instance type: the metrics' `instance_seconds`, the unit the
benchmark compares (with no warm pool, exactly the running instance-seconds it always was).
"""

from __future__ import annotations

from functools import lru_cache

from devkit import template
from devkit.lambdas import ROOT

# --- prices, us-east-1 (as listed on 2026-12-07) ------------------------------------------------
#: https://aws.amazon.com/ebs/pricing/ : General Purpose SSD (gp3) storage, $0.08 per GB-month (the
#: 3,000 IOPS and 125 MB/s a gp3 volume includes cost nothing extra; the template provisions no more).
GP3_USD_PER_GB_MONTH = 0.08
#: The month AWS's pricing pages bill a GB-month over: 730 hours.
HOURS_PER_MONTH = 730.0
#: https://aws.amazon.com/ec2/pricing/on-demand/ : Linux On-Demand, per hour, of the instance types the
#: template's pools launch first (`<Pool>InstanceTypes`: a warm pool is On-Demand only, and a group with
#: one launches the first type of the list).
ON_DEMAND_USD_PER_HOUR = {"c7g.medium": 0.0363, "c7g.large": 0.0725}
#: A pool the template does not define is billed as the template's video and ai pools' first type.
DEFAULT_INSTANCE_TYPE = "c7g.large"

# --- warm starts ---------------------------------------------------------------------------------
#: Seconds from a scale-out to in service for an instance taken from a warm pool (the default of the
#: scenario's `fleet.warm_start_seconds`). AWS's EC2 Auto Scaling workshop measures it on a Stopped
#: warm pool: "Launching a new EC2 instance from warm pool: ... Duration: 36s", against 260 s for the
#: same instance launched into the warm pool cold (awslabs/ec2-spot-workshops,
#: content/efficient-and-resilient-ec2-auto-scaling/lab1/100-launch-from-warm-pool.md and
#: 90-enable-warm-pool.md). AWS publishes no figure for Hibernated or Running pools: the model uses the
#: same 36 s for them (at most what they take: a Running instance only passes the launch hook's health
#: check; a hibernated one resumes its RAM instead of starting its worker).
WARM_START_SECONDS = 36.0


@lru_cache(maxsize=1)
def root_volume_gb() -> float:
    """The worker's root volume size, read from the pool template's launch template (never a copy)."""
    root = template.load(ROOT / "templates" / "pool.yaml")
    data = root["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    (mapping,) = data["BlockDeviceMappings"]
    if mapping["Ebs"]["VolumeType"] != "gp3":
        raise ValueError(f"templates/pool.yaml: the root volume is {mapping['Ebs']['VolumeType']}, priced here as gp3")
    return float(mapping["Ebs"]["VolumeSize"])


def storage_share(instance_type: str) -> float:
    """What one second of a stopped instance's storage costs, in seconds of the running instance: its
    root volume's gp3 price per hour over the instance's On-Demand price per hour."""
    try:
        hourly = ON_DEMAND_USD_PER_HOUR[instance_type]
    except KeyError:
        known = ", ".join(sorted(ON_DEMAND_USD_PER_HOUR))
        raise ValueError(f"no On-Demand price for instance type {instance_type!r} (priced: {known})") from None
    return root_volume_gb() * GP3_USD_PER_GB_MONTH / HOURS_PER_MONTH / hourly

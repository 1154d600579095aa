"""A pool's optional warm pool (templates/pool.yaml): off by default, and AWS's constraint kept when on.

AWS: "You can't add a warm pool to Auto Scaling groups that have a mixed instances policy or that launch
Spot Instances." With WarmPoolState on, the pool's group must launch from its plain launch template
(On-Demand, one type), and the template's rule WarmPoolIsOnDemand must refuse Spot settings.
"""

from __future__ import annotations

from typing import Any

import pytest

from devkit.stackmodel import Stack, instantiate

from . import invariants as inv

POOLS = ("MessagingPool", "VideoPool", "AiPool")


def pool_with(deployed: Stack, pool: str, **overrides: Any) -> Stack:
    """The pool's nested stack as deployed, with some of its parameters changed."""
    child = deployed.child(pool)
    given = deployed.resolve(deployed.template["Resources"][pool]["Properties"]["Parameters"])
    return instantiate(
        child.templates, child.template_key, given | overrides, child.pseudo, child.path, parent=deployed
    )


def rule_refusals(stack: Stack) -> list[str]:
    """The AssertDescription of every rule of the template whose condition holds and whose assertion fails."""
    refused = []
    for rule in stack.template.get("Rules", {}).values():
        if "RuleCondition" in rule and not stack.resolve(rule["RuleCondition"]):
            continue
        refused += [a["AssertDescription"] for a in rule["Assertions"] if not stack.resolve(a["Assert"])]
    return refused


def test_given_an_environment_then_no_pool_has_a_warm_pool_and_every_group_stays_spot_ready(deployed: Stack) -> None:
    assert inv.of_type(deployed, "AWS::AutoScaling::WarmPool") == []
    assert inv.spot_violations(deployed) == []
    for pool in POOLS:
        assert rule_refusals(deployed.child(pool)) == []


@pytest.mark.parametrize("state", ["Stopped", "Hibernated", "Running"])
def test_given_a_warm_pool_when_on_then_the_group_launches_on_demand_from_its_plain_launch_template(
    deployed: Stack, state: str
) -> None:
    stack = pool_with(
        deployed,
        "VideoPool",
        WarmPoolState=state,
        WarmPoolMinSize=1,
        WarmPoolReuseOnScaleIn="true",
        OnDemandPercentageAboveBaseCapacity=100,
    )
    resources = stack.resources()
    group = resources["AutoScalingGroup"].properties
    assert "MixedInstancesPolicy" not in group
    assert group["LaunchTemplate"]["LaunchTemplateId"] == stack.ref("LaunchTemplate")
    warm = resources["WarmPool"].properties
    assert (warm["PoolState"], int(warm["MinSize"]), warm["InstanceReusePolicy"]) == (
        state,
        1,
        {"ReuseOnScaleIn": True},
    )
    assert "MaxGroupPreparedCapacity" not in warm  # -1: AWS's default, MaxSize
    hibernation = resources["LaunchTemplate"].properties["LaunchTemplateData"].get("HibernationOptions")
    assert hibernation == ({"Configured": True} if state == "Hibernated" else None)
    assert rule_refusals(stack) == []


def test_given_a_warm_pool_with_spot_when_deployed_then_the_rule_refuses_it_and_names_the_fix(deployed: Stack) -> None:
    stack = pool_with(deployed, "VideoPool", WarmPoolState="Stopped", OnDemandPercentageAboveBaseCapacity=70)
    [refusal] = rule_refusals(stack)
    assert "OnDemandPercentageAboveBaseCapacity" in refusal and "WarmPoolState" in refusal


def test_given_a_max_prepared_capacity_when_set_then_the_warm_pool_takes_it(deployed: Stack) -> None:
    stack = pool_with(
        deployed,
        "AiPool",
        WarmPoolState="Stopped",
        WarmPoolMaxPreparedCapacity=6,
        OnDemandPercentageAboveBaseCapacity=100,
    )
    assert int(stack.resources()["WarmPool"].properties["MaxGroupPreparedCapacity"]) == 6

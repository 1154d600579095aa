"""The stack writes every worker setting it owns into each pool's environment path, before the group can
launch: a first deploy on a new account launches workers that find their queues (issue 24, point 11).

The worker reads its settings (workers/queue_worker/settings.py) from the variables the user data
builds out of the parameters directly under EnvParameterPath. Only JOB_HANDLER stays the operator's.
"""

from __future__ import annotations

from devkit.stackmodel import Resource, Stack
from tests.contract import invariants as inv

#: The worker settings the stack owns: their values come from the stack's own resources.
STACK_OWNED = {"QUEUE_URLS", "VISIBILITY_TIMEOUT", "LEDGER_TABLE"}


def pool_stacks(root: Stack) -> list[Stack]:
    return [stack for stack in root.stacks() if "AutoScalingGroup" in stack.resources()]


def settings(pool: Stack) -> dict[str, Resource]:
    path = pool.parameters["EnvParameterPath"]
    return {
        str(r.properties["Name"]).removeprefix(f"{path}/"): r
        for r in pool.resources().values()
        if r.type == "AWS::SSM::Parameter" and str(r.properties["Name"]).startswith(f"{path}/")
    }


def test_given_an_environment_then_each_pool_path_holds_its_queues_in_priority_order(deployed: Stack) -> None:
    pools = pool_stacks(deployed)
    assert len(pools) == 3
    for pool in pools:
        written = settings(pool)
        assert set(written) == STACK_OWNED, pool.path
        queues = [pool.child(q) for q in ("Queue1", "Queue2", "Queue3", "Queue4", "Queue5") if q in pool.resources()]
        urls = [q.outputs()["QueueUrl"] for q in queues]
        assert written["QUEUE_URLS"].properties["Value"] == ",".join(urls)
        assert len(urls) == len(pool.parameters["QueueSuffixes"].split(","))
        visibility = {int(r.properties["VisibilityTimeout"]) for q in queues for r in q.resources().values()
                      if r.logical_id == "JobQueue"}  # fmt: skip
        assert {int(written["VISIBILITY_TIMEOUT"].properties["Value"])} == visibility
        assert written["LEDGER_TABLE"].properties["Value"] == deployed.ref("LedgerTable")


def test_given_an_environment_then_no_group_can_launch_before_its_workers_settings_exist(deployed: Stack) -> None:
    for pool in pool_stacks(deployed):
        group = pool.resources()["AutoScalingGroup"]
        written = settings(pool)
        depends = set(inv._as_list(group.raw.get("DependsOn", [])))
        # The conditional LEDGER_TABLE parameter is referred to by a tag (an implicit dependency).
        referred = {tag["Value"] for tag in group.properties["Tags"]}
        for name, parameter in written.items():
            assert parameter.logical_id in depends or pool.ref(parameter.logical_id) in referred, (pool.path, name)

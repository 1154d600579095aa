"""Least privilege, checked on the transformed stack (issues 23 and 24).

- No statement of one function's role reaches a queue, table or topic that belongs to another
  function (a resource belongs to the functions wired to it: their event source mappings, their
  environment, and the dead-letter queue of a queue they consume; reading a queue's attributes, never
  a message, does not reach it: SHARED_READS), and no SQS action is granted on
  Resource "*"; the only AWS managed policies on a role are the ones SAM attaches to every function
  for logs and X-Ray, which grant nothing on a queue, table or topic.
- The workers' ledger grant is the ledger's own list of what a worker may write
  (queue_scaler.credits.adapters.ledger.WORKER_WRITABLE_ATTRIBUTES), on their own pool's jobs only.
- The tables holding money (the ledger) and credits still owed (parked letters) survive a stack
  deletion or replacement, refuse a DeleteTable, and can be restored to any second.
Each check is shown failing on a copy of the templates that breaks it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devkit.localcloud.iam import ComponentRole, component_roles
from devkit.localcloud.policy import Access, evaluate
from devkit.stackmodel import ROOT as ROOT_DIR
from devkit.stackmodel import Resource, Stack, root_stack
from queue_scaler.credits.adapters.ledger import KEY_ATTRIBUTES, WORKER_WRITABLE_ATTRIBUTES

from . import invariants as inv

ROOT, POOL, QUEUE = "template.yaml", "templates/pool.yaml", "templates/queue.yaml"
#: Attached by SAM to every function role it creates: CloudWatch Logs writes (the function's own log
#: stream) and X-Ray writes (which support no resource-level permission). Neither names a queue,
#: table or topic; any other managed policy (AWSLambdaSQSQueueExecutionRole, which SAM's SQS event
#: type attaches with Resource "*") fails the check.
SAM_FUNCTION_BASICS = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
#: The calls a statement could make on each kind of resource, to find what it reaches.
PROBES = {
    "sqs": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
    "dynamodb": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:Scan"],
    "sns": ["sns:Publish", "sns:Subscribe"],
}
#: Reads that do not reach another function's resource: GetQueueAttributes returns a queue's counters
#: and configuration, never a message, and cannot change the queue. MetricsFunction counts the dead
#: letters DlqRefundFunction consumes (DeadLettersWaiting, its CountDeadLetters statement); CloudWatch's
#: own SQS metrics are the same read. Only this action is shared: receiving, sending, deleting or
#: looking up a queue's URL (what consuming or sending needs) on another function's queue is still a
#: violation, and so is any action on its tables and topics ("metrics reads the dead letters" below).
SHARED_READS = {"sqs:GetQueueAttributes"}
DURABLE_TABLES = ["LedgerTable", "ParkingTable"]


def _functions(stack: Stack) -> list[Resource]:
    return inv.of_type(stack, "AWS::Lambda::Function")


def _resources(stack: Stack) -> dict[str, tuple[str, list[str]]]:
    """Every queue, table and topic: its ARN, and the values a function's environment may name it by."""
    found: dict[str, tuple[str, list[str]]] = {}
    for resource in stack.walk():
        owner = resource.stack
        if resource.type == "AWS::SQS::Queue":
            arn = str(owner.get_att(resource.logical_id, "Arn"))
            found[arn] = (resource.path, [arn, str(owner.resource_ref(resource)), resource.properties["QueueName"]])
        elif resource.type == "AWS::DynamoDB::Table":
            arn = str(owner.get_att(resource.logical_id, "Arn"))
            found[arn] = (resource.path, [arn, str(owner.resource_ref(resource))])
        elif resource.type == "AWS::SNS::Topic":
            arn = str(owner.resource_ref(resource))
            found[arn] = (resource.path, [arn])
    return found


def owners(stack: Stack) -> dict[str, set[str]]:
    """Each resource ARN and the functions wired to it."""
    resources = _resources(stack)
    owned: dict[str, set[str]] = {arn: set() for arn in resources}
    for function in _functions(stack):
        name = function.stack.resource_ref(function)
        variables = [str(v) for v in function.properties.get("Environment", {}).get("Variables", {}).values()]
        for arn, (_, aliases) in resources.items():
            if any(alias == value or alias in value.split(",") for alias in aliases for value in variables):
                owned[arn].add(function.logical_id)
        for mapping in inv.of_type(stack, "AWS::Lambda::EventSourceMapping"):
            if mapping.properties["FunctionName"] == name:
                owned[str(mapping.properties["EventSourceArn"])].add(function.logical_id)
    # A consumed queue's dead-letter queue holds that consumer's failed records: its own, too.
    for queue in inv.of_type(stack, "AWS::SQS::Queue"):
        arn = str(queue.stack.get_att(queue.logical_id, "Arn"))
        dead_letters = queue.properties.get("RedrivePolicy", {}).get("deadLetterTargetArn")
        if dead_letters and owned[arn]:
            owned[str(dead_letters)] |= owned[arn]
    return owned


def function_roles(stack: Stack) -> dict[str, ComponentRole]:
    """Each function's execution role (workers and the producer are not functions)."""
    functions = {f.logical_id for f in _functions(stack)}
    return {r.component: r for r in component_roles(stack) if r.component in functions}


def cross_function_violations(stack: Stack) -> list[str]:
    """Every (function, resource of other functions only) pair that one of its statements reaches."""
    violations = []
    owned = owners(stack)
    for component, role in function_roles(stack).items():
        for arn, users in owned.items():
            if not users or component in users:
                continue
            service = arn.split(":")[2]
            for action in PROBES[service]:
                if action in SHARED_READS:
                    continue
                decision = evaluate(role.documents(), Access(action, arn))
                if decision.allowed:
                    violations.append(f"{component}: {action} on {arn} (of {sorted(users)}) by {decision.reason}")
    return violations


def sqs_wildcard_violations(stack: Stack) -> list[str]:
    """Any statement granting an SQS action on Resource "*", and any managed policy beyond SAM's basics."""
    violations = []
    for where, statement in inv.policy_statements(stack):
        actions = [str(a).lower() for a in inv._as_list(statement.get("Action", []))]
        resources = inv._as_list(statement.get("Resource", []))
        if statement.get("Effect") == "Allow" and any(a.startswith("sqs:") for a in actions) and "*" in resources:
            violations.append(f"{where}: {actions} on Resource '*'")
    for role in inv.of_type(stack, "AWS::IAM::Role"):
        for arn in set(role.properties.get("ManagedPolicyArns", [])) - SAM_FUNCTION_BASICS:
            violations.append(f"{role.path}: managed policy {arn}")
    return violations


CHECKS = [cross_function_violations, sqs_wildcard_violations]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removesuffix("_violations"))
def test_given_an_environment_then_no_function_reaches_anothers_resources(deployed: Stack, check: Any) -> None:
    violations = check(deployed)
    assert violations == [], inv.pretty(violations)


def test_given_an_environment_then_the_resources_have_the_owners_the_checks_assume(deployed: Stack) -> None:
    owned = owners(deployed)
    by_name = {arn.rsplit(":", 1)[-1]: users for arn, users in owned.items()}
    stack = deployed.pseudo["AWS::StackName"]
    assert by_name[f"{stack}-lifecycle-events"] == {"LifecycleFunction"}
    assert by_name[f"{stack}-lifecycle-events-dlq"] == {"LifecycleFunction"}
    dead_letter_queues = [n for n in by_name if n.endswith("-dlq") and "lifecycle" not in n]
    assert len(dead_letter_queues) == 11
    assert all(by_name[n] == {"DlqRefundFunction"} for n in dead_letter_queues)


def _stack(templates: dict[str, Any], samconfig: dict[str, Any]) -> Stack:
    deploy = inv.environments(samconfig)["dev"]
    return root_stack(templates, inv.parameter_overrides(deploy), deploy["stack_name"], deploy["region"])


def _refund_statements(templates: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = templates[ROOT]["Resources"]["DlqRefundFunctionRole"]["Properties"]["Policies"]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def _wildcard_refund_queues(t: dict[str, Any]) -> None:
    # The grant before issue 24: every "<stack>-*-dlq", which includes the lifecycle intake's DLQ.
    _refund_statements(t).append(
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-*-dlq"
            },
        }
    )


def _sqs_on_star(t: dict[str, Any]) -> None:
    _refund_statements(t).append({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})


def _metrics_receives_dead_letters(t: dict[str, Any]) -> None:
    # The shared read widened into a consume of DlqRefundFunction's dead-letter queues.
    (policy,) = t[ROOT]["Resources"]["MetricsFunctionRole"]["Properties"]["Policies"]
    (count,) = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "CountDeadLetters"]
    count["Action"] = ["sqs:GetQueueAttributes", "sqs:ReceiveMessage"]


def _sam_sqs_event_policy(t: dict[str, Any]) -> None:
    role = t[ROOT]["Resources"]["LifecycleFunctionRole"]["Properties"]
    role["ManagedPolicyArns"].append("arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole")


@pytest.mark.parametrize(
    ("breaks", "check", "expected"),
    [
        pytest.param(_wildcard_refund_queues, cross_function_violations, "lifecycle-events-dlq", id="wildcard DLQs"),
        pytest.param(
            _metrics_receives_dead_letters,
            cross_function_violations,
            "MetricsFunction: sqs:ReceiveMessage",
            id="metrics reads the dead letters",
        ),
        pytest.param(_sqs_on_star, sqs_wildcard_violations, "on Resource '*'", id="sqs on star"),
        pytest.param(_sam_sqs_event_policy, sqs_wildcard_violations, "AWSLambdaSQSQueueExecutionRole", id="sam sqs"),
    ],
)
def test_given_a_broken_copy_then_the_check_names_the_breach(
    templates: dict[str, Any], samconfig: dict[str, Any], breaks: Any, check: Any, expected: str
) -> None:
    broken = copy.deepcopy(templates)
    breaks(broken)
    violations = check(_stack(broken, samconfig))
    assert any(expected in v for v in violations), violations


# --- the workers' ledger grant ---------------------------------------------------------------------
def _ledger_statements(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Each pool's record-job-attempts statements."""
    found = {}
    for policy in inv.of_type(stack, "AWS::IAM::Policy"):
        if policy.properties["PolicyName"] == "record-job-attempts":
            found[str(policy.stack.parameters["PoolName"])] = inv._as_list(
                policy.properties["PolicyDocument"]["Statement"]
            )
    return found


def test_given_an_environment_then_a_worker_writes_only_the_ledgers_worker_fields_of_its_own_pools_jobs(
    deployed: Stack,
) -> None:
    statements = _ledger_statements(deployed)
    assert set(statements) == {"messaging", "video", "ai"}
    for pool, pool_statements in statements.items():
        (write,) = [s for s in pool_statements if "dynamodb:UpdateItem" in inv._as_list(s["Action"])]
        assert inv._as_list(write["Action"]) == ["dynamodb:UpdateItem"]
        condition = write["Condition"]
        assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [f"JOB#{pool}#*"]
        assert sorted(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == sorted(
            {*KEY_ATTRIBUTES, *WORKER_WRITABLE_ATTRIBUTES}
        )
        assert set(condition["StringEqualsIfExists"]["dynamodb:ReturnValues"]) == {"NONE", "UPDATED_OLD", "UPDATED_NEW"}
        granted = {a for s in pool_statements for a in inv._as_list(s["Action"])}
        assert granted == {"dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query"}
        for statement in pool_statements:
            assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [f"JOB#{pool}#*"]


# --- durable tables -------------------------------------------------------------------------------
@pytest.mark.parametrize("logical_id", DURABLE_TABLES)
def test_given_the_transformed_template_then_the_money_tables_survive_deletion_and_replacement(
    templates: dict[str, Any], logical_id: str
) -> None:
    table = templates[ROOT]["Resources"][logical_id]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_given_the_readme_then_it_says_what_a_stack_deletion_keeps() -> None:
    text = (ROOT_DIR / "README.md").read_text()
    section = text.split("### Deleting the stack", 1)[1].split("\n## ", 1)[0]
    for logical_id in DURABLE_TABLES:
        assert logical_id in section
    assert "update-table" in section and "--no-deletion-protection-enabled" in section

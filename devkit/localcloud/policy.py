"""What an AWS request asks IAM for, and whether a role's policies grant it.

Both halves are pure and shared: the local cloud's authorizer (devkit/localcloud/iam.py) judges every
request the emulator receives with them, and the recorded-calls contract test judges every call the
components made with the same functions, so the two can never disagree about a grant.

`requested_access` turns one API call (its IAM service prefix, operation name and parameters) into
the (action, resource ARN) pairs AWS authorizes: one per table of a DynamoDB transaction, the
document and every instance of an SSM SendCommand, "*" where the action has no resource-level
permission. `evaluate` applies IAM's rules: an explicit Deny wins, otherwise an Allow whose Action,
Resource and Condition all match grants, otherwise the implicit deny. moto's own evaluator matches
the resource only for SQS, IAM and STS and treats an Allow whose condition it cannot read as a
Deny; this one matches every resource and judges the condition operators the templates use, with
the keys a request carries (`context`), and a key the request lacks fails its condition, as on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: SigV4 signing names that differ from the service's IAM action prefix.
_PREFIXES = {"monitoring": "cloudwatch", "email": "ses", "states": "states"}
#: DynamoDB transaction parts and the action each one needs on its table.
_TRANSACT_PARTS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
#: SQS authorizes a batch as the single-message action (SQS's API reference, each batch action).
_SQS_BATCHES = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


@dataclass(frozen=True)
class Access:
    """One thing IAM authorizes: an action on a resource, with the condition keys the request itself
    carries (DynamoDB's `dynamodb:LeadingKeys`: the partition key values of the items it touches)."""

    action: str
    resource: str
    leading_keys: tuple[str, ...] | None = None

    def context(self) -> dict[str, str | list[str]]:
        """The request's own condition keys."""
        return {} if self.leading_keys is None else {"dynamodb:LeadingKeys": list(self.leading_keys)}


def iam_prefix(signing_name: str) -> str:
    """The IAM action prefix of a service from its SigV4 signing name (`monitoring` is `cloudwatch`)."""
    return _PREFIXES.get(signing_name, signing_name)


def requested_access(  # noqa: PLR0911, PLR0912 - one rule per service
    prefix: str,
    operation: str,
    get: Callable[[str], Any],
    region: str,
    account: str,
    *,
    partition_keys: Mapping[str, str] | None = None,
) -> list[Access]:
    """The actions and resources AWS authorizes for one call. `get(name)` reads a request parameter
    (None when absent), so the same rules serve the client's parameters and the emulator's request.
    `partition_keys` (table name to its HASH attribute) gives item operations their leading keys."""
    action = f"{prefix}:{_SQS_BATCHES.get(operation, operation) if prefix == 'sqs' else operation}"
    arn = f"arn:aws:{prefix}:{region}:{account}"
    if prefix == "sqs":
        if get("QueueUrl"):
            return [Access(action, f"{arn}:{str(get('QueueUrl')).rstrip('/').rsplit('/', 1)[-1]}")]
        if get("QueueName"):
            return [Access(action, f"{arn}:{get('QueueName')}")]
    elif prefix == "dynamodb":
        if operation == "TransactWriteItems":
            return [
                Access(
                    f"dynamodb:{_TRANSACT_PARTS[part]}",
                    f"{arn}:table/{body['TableName']}",
                    _leading_keys(body, partition_keys),
                )
                for item in get("TransactItems") or []
                for part, body in item.items()
            ]
        if operation == "TransactGetItems":
            return [
                Access("dynamodb:GetItem", f"{arn}:table/{i['Get']['TableName']}") for i in get("TransactItems") or []
            ]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [Access(action, f"{arn}:table/{table}") for table in get("RequestItems") or {}]
        if get("TableName"):
            item = {"TableName": get("TableName"), "Key": get("Key"), "Item": get("Item")}
            return [Access(action, f"{arn}:table/{get('TableName')}", _leading_keys(item, partition_keys))]
    elif prefix == "autoscaling" and get("AutoScalingGroupName"):
        # A group's ARN carries an id only AWS knows; the templates' grants match any id ("*").
        return [Access(action, f"{arn}:autoScalingGroup:*:autoScalingGroupName/{get('AutoScalingGroupName')}")]
    elif prefix == "ssm":
        return _ssm(action, operation, get, arn, region)
    elif prefix == "sns" and (get("TopicArn") or get("TargetArn")):
        return [Access(action, str(get("TopicArn") or get("TargetArn")))]
    elif prefix == "logs" and get("logGroupName"):
        group = f"{arn}:log-group:{get('logGroupName')}"
        stream = get("logStreamName")
        return [Access(action, f"{group}:log-stream:{stream}" if stream else group)]
    elif prefix == "sts" and get("RoleArn"):
        return [Access(action, str(get("RoleArn")))]
    return [Access(action, "*")]


def _leading_keys(body: Mapping[str, Any], partition_keys: Mapping[str, str] | None) -> tuple[str, ...] | None:
    """The partition key value of the one item a DynamoDB item operation names (its Key, or a Put's
    Item), or None where the request names none or the table's key is unknown."""
    attribute = (partition_keys or {}).get(str(body.get("TableName")))
    item = body.get("Key") or body.get("Item")
    if attribute is None or not isinstance(item, Mapping) or attribute not in item:
        return None
    value = item[attribute]
    return (str(next(iter(value.values())) if isinstance(value, Mapping) else value),)


def _ssm(action: str, operation: str, get: Callable[[str], Any], arn: str, region: str) -> list[Access]:
    def parameter(name: str) -> str:
        return f"{arn}:parameter{name if name.startswith('/') else '/' + name}"

    if operation == "SendCommand":
        # Authorized on the document (AWS's own documents have no account) and on each instance.
        document = f"arn:aws:ssm:{region}::document/{get('DocumentName')}"
        account = arn.rsplit(":", 1)[-1]
        instances = [f"arn:aws:ec2:{region}:{account}:instance/{i}" for i in get("InstanceIds") or []]
        return [Access(action, document), *(Access(action, i) for i in instances)]
    if operation == "GetParameters":
        return [Access(action, parameter(str(n))) for n in get("Names") or []]
    if get("Name"):
        return [Access(action, parameter(str(get("Name"))))]
    if get("Path"):
        return [Access(action, parameter(str(get("Path"))))]
    return [Access(action, "*")]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: The statement that decided: its Sid (or its index), or why nothing granted.
    reason: str


def evaluate(
    documents: Iterable[Mapping[str, Any]], access: Access, context: Mapping[str, Any] | None = None
) -> Decision:
    """IAM's decision for one identity's policy `documents` on `access`, with the request's condition keys."""
    context = {**access.context(), **(context or {})}
    allow: str | None = None
    for document in documents:
        statements = document.get("Statement", [])
        for index, statement in enumerate([statements] if isinstance(statements, dict) else statements):
            if not _applies(statement, access, context):
                continue
            name = str(statement.get("Sid") or f"statement {index}")
            if statement.get("Effect") == "Deny":
                return Decision(False, f"denied by {name}")
            allow = allow or name
    return Decision(True, allow) if allow else Decision(False, "no statement grants it")


def _applies(statement: Mapping[str, Any], access: Access, context: Mapping[str, Any]) -> bool:
    if "Action" in statement:
        action_ok = _any_match(statement["Action"], access.action, ignore_case=True)
    else:
        action_ok = not _any_match(statement.get("NotAction", []), access.action, ignore_case=True)
    if "Resource" in statement:
        resource_ok = _any_match(statement["Resource"], access.resource)
    else:
        resource_ok = not _any_match(statement.get("NotResource", []), access.resource)
    return action_ok and resource_ok and conditions_hold(statement.get("Condition", {}), context)


def conditions_hold(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any]) -> bool:
    """Every operator's every key must hold; a key the request does not carry fails (as on AWS,
    without an IfExists operator), except under `ForAllValues:`, which IAM defines as true for an
    absent or empty key. An operator this module does not know fails too: a grant is never assumed."""
    for qualified, keys in condition.items():
        quantifier, _, operator = qualified.rpartition(":")
        if quantifier not in ("", "ForAllValues", "ForAnyValue"):
            return False
        for key, expected in keys.items():
            values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
            actual = context.get(key)
            if actual is None:
                if quantifier == "ForAllValues":
                    continue
                return False
            actuals = [str(a) for a in actual] if isinstance(actual, list) else [str(actual)]
            held = [_holds(operator, a, values) for a in actuals]
            if None in held:
                return False
            if not (all(held) if quantifier == "ForAllValues" else any(held) if quantifier else held == [True]):
                return False
    return True


def _holds(operator: str, actual: str, values: Sequence[str]) -> bool | None:
    """One value against an operator's values; None for an operator this module does not know."""
    if operator == "StringEquals":
        return actual in values
    if operator == "StringLike":
        return any(_match(v, actual) for v in values)
    if operator == "StringNotEquals":
        return actual not in values
    return None


def condition_keys(documents: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every condition key the documents use (what a request's context must be able to supply)."""
    keys: set[str] = set()
    for document in documents:
        statements = document.get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            for operator_keys in statement.get("Condition", {}).values():
                keys.update(operator_keys)
    return keys


def _any_match(patterns: str | Sequence[str], value: str, *, ignore_case: bool = False) -> bool:
    return any(
        _match(p, value, ignore_case=ignore_case) for p in ([patterns] if isinstance(patterns, str) else patterns)
    )


def _match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    # IAM wildcards: * any run of characters, ? one character; everything else literal.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None

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

DynamoDB's fine-grained access control: every item request carries the condition keys AWS documents,
derived here from its parameters as DynamoDB derives them:
- `dynamodb:LeadingKeys`: the partition key values of the items it touches (its Key or Item, each
  key of a batch, a Query's equality on the partition key); one access per item of a transaction or
  batch, each judged as the single-item action (TransactWriteItems: Put as PutItem, Update as
  UpdateItem, ...), as the IAM and DynamoDB pages below describe.
- `dynamodb:Attributes`: the top-level attribute names the request names: the key attributes (always:
  a grant listing attributes must list the keys too), a Put's item, and every attribute an update,
  condition, projection, key-condition or filter expression (or a legacy parameter) names, `#name`
  placeholders resolved and `a.b` / `a[0]` counted as `a`. Counting every named attribute, not only
  the updated ones, errs on the side AWS cannot be kinder than: a request passing here passes there.
- `dynamodb:ReturnValues`: the request's ReturnValues when it sets one (ALL_OLD/ALL_NEW return every
  attribute, so an attribute-limited grant must require NONE/UPDATED_*), absent otherwise.
- `dynamodb:Select`: a read's Select, or ALL_ATTRIBUTES when it names no projection (DynamoDB's
  default: every attribute comes back), so a read-limited grant must require SPECIFIC_ATTRIBUTES.
Operators ending in `IfExists` hold when the request lacks the key; `ForAllValues:` holds for an absent
or empty key. Sources: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
(condition keys, "Ensuring attribute-based restrictions are enforced"),
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_dynamodb_attributes.html
(attributes with `StringEqualsIfExists` on `dynamodb:Select`),
https://repost.aws/knowledge-center/dynamodb-table-restrict-attributes (the key attributes must be
listed; ReturnValues NONE or UPDATED_*), and
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
(ForAllValues on an absent key).
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
    carries (DynamoDB's fine-grained access control keys: see the module's docstring)."""

    action: str
    resource: str
    leading_keys: tuple[str, ...] | None = None
    attributes: tuple[str, ...] | None = None
    select: str | None = None
    return_values: str | None = None

    def context(self) -> dict[str, str | list[str]]:
        """The request's own condition keys."""
        keys: dict[str, str | list[str]] = {}
        if self.leading_keys is not None:
            keys["dynamodb:LeadingKeys"] = list(self.leading_keys)
        if self.attributes is not None:
            keys["dynamodb:Attributes"] = list(self.attributes)
        if self.select is not None:
            keys["dynamodb:Select"] = self.select
        if self.return_values is not None:
            keys["dynamodb:ReturnValues"] = self.return_values
        return keys


def iam_prefix(signing_name: str) -> str:
    """The IAM action prefix of a service from its SigV4 signing name (`monitoring` is `cloudwatch`)."""
    return _PREFIXES.get(signing_name, signing_name)


def requested_access(  # noqa: PLR0911 - one rule per service
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
        return _dynamodb(action, operation, get, arn, partition_keys or {})
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


#: Reads: a request naming no projection gets every attribute (DynamoDB's default Select).
_READS = {"GetItem", "BatchGetItem", "Query", "Scan"}
#: DynamoDB's expression keywords and functions: not attribute names (a function only before "(").
_KEYWORDS = {"set", "remove", "add", "delete", "and", "or", "not", "between", "in"}
_FUNCTIONS = {
    "attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains", "size",
    "if_not_exists", "list_append",
}  # fmt: skip
_TOKEN = re.compile(r"(?P<dot>\.)|(?P<value>:\w+)|(?P<name>#\w+|[A-Za-z_][\w]*)")
_EXPRESSIONS = (
    "UpdateExpression",
    "ConditionExpression",
    "ProjectionExpression",
    "KeyConditionExpression",
    "FilterExpression",
)
_LEGACY = ("AttributesToGet", "AttributeUpdates", "Expected", "KeyConditions", "QueryFilter", "ScanFilter")


def _dynamodb(  # noqa: PLR0911 - one rule per kind of request
    action: str, operation: str, get: Callable[[str], Any], arn: str, partition_keys: Mapping[str, str]
) -> list[Access]:
    """DynamoDB's accesses: one per item of a transaction (as its single-item action), one per table
    of a batch (with every key it names there), else one, each with its fine-grained condition keys."""
    if operation == "TransactWriteItems":
        return [
            _item_access(f"dynamodb:{_TRANSACT_PARTS[part]}", body, arn, partition_keys, read=False)
            for entry in get("TransactItems") or []
            for part, body in entry.items()
        ]
    if operation == "TransactGetItems":
        return [
            _item_access("dynamodb:GetItem", entry["Get"], arn, partition_keys, read=True)
            for entry in get("TransactItems") or []
        ]
    if operation == "BatchGetItem":
        return [
            _batch_access(action, table, list(request.get("Keys", [])), request, arn, partition_keys, read=True)
            for table, request in (get("RequestItems") or {}).items()
        ]
    if operation == "BatchWriteItem":
        return [
            _batch_access(
                action,
                table,
                [r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key") or {} for r in requests],
                {},
                arn,
                partition_keys,
                read=False,
            )
            for table, requests in (get("RequestItems") or {}).items()
        ]
    if not get("TableName"):
        return [Access(action, "*")]
    fields = ("TableName", "Key", "Item", "Select", "ReturnValues", "ExpressionAttributeNames")
    params = {name: get(name) for name in (*fields, "ExpressionAttributeValues", *_EXPRESSIONS, *_LEGACY)}
    if operation not in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"):
        return [Access(action, f"{arn}:table/{get('TableName')}")]
    return [_item_access(action, params, arn, partition_keys, read=operation in _READS)]


def _item_access(
    action: str, body: Mapping[str, Any], arn: str, partition_keys: Mapping[str, str], *, read: bool
) -> Access:
    table = str(body.get("TableName"))
    item = body.get("Key") or body.get("Item") or {}
    key = partition_keys.get(table)
    leading: tuple[str, ...] | None = None
    if key is not None and key in item:
        leading = (_scalar(item[key]),)
    elif key is not None and body.get("KeyConditionExpression"):
        leading = _query_leading_key(body, key)
    return Access(
        action,
        f"{arn}:table/{table}",
        leading,
        _attributes(body, item),
        _select(body) if read else None,
        body.get("ReturnValues") or None,
    )


def _batch_access(  # noqa: PLR0917 - a batch's table, its items and its request
    action: str,
    table: str,
    items: list[Mapping[str, Any]],
    request: Mapping[str, Any],
    arn: str,
    partition_keys: Mapping[str, str],
    *,
    read: bool,
) -> Access:
    key = partition_keys.get(table)
    leading = None if key is None else tuple(sorted({_scalar(i[key]) for i in items if key in i}))
    names: set[str] = set()
    for item in items:
        names |= set(_attributes(request, item))
    return Access(action, f"{arn}:table/{table}", leading, tuple(sorted(names)), _select(request) if read else None)


def _scalar(value: Any) -> str:
    """A key attribute's value as text, from DynamoDB JSON ({"S": "x"}) or a plain value."""
    return str(next(iter(value.values())) if isinstance(value, Mapping) else value)


def _select(body: Mapping[str, Any]) -> str:
    if body.get("Select"):
        return str(body["Select"])
    projected = body.get("ProjectionExpression") or body.get("AttributesToGet")
    return "SPECIFIC_ATTRIBUTES" if projected else "ALL_ATTRIBUTES"


def _attributes(body: Mapping[str, Any], item: Mapping[str, Any]) -> tuple[str, ...]:
    """The top-level attribute names a request names: its key's or item's, every expression's and
    every legacy parameter's."""
    names = set(item)
    placeholders = body.get("ExpressionAttributeNames") or {}
    for field_name in _EXPRESSIONS:
        names |= expression_attributes(str(body.get(field_name) or ""), placeholders)
    for field_name in _LEGACY:
        value = body.get(field_name)
        if value:
            names |= set(value)
    return tuple(sorted(names))


def expression_attributes(expression: str, placeholders: Mapping[str, str]) -> set[str]:
    """The top-level attributes a DynamoDB expression names (`#n` resolved; `a.b[0]` is `a`)."""
    names: set[str] = set()
    after_dot = False
    for token in _TOKEN.finditer(expression):
        nested, after_dot = after_dot, token.lastgroup == "dot"
        word = token.group()
        if token.lastgroup != "name" or nested:
            continue
        if word.startswith("#"):
            names.add(placeholders.get(word, word))
        elif word.lower() not in _KEYWORDS and not (
            word.lower() in _FUNCTIONS and expression[token.end() :].lstrip().startswith("(")
        ):
            names.add(word)
    return names


def _query_leading_key(body: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    """The partition key value a Query's key condition sets (`pk = :v`), or None if it sets none."""
    placeholders = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    for left, right in re.findall(r"(#?\w+)\s*=\s*(:\w+)", str(body["KeyConditionExpression"])):
        if placeholders.get(left, left) == key and right in values:
            return (_scalar(values[right]),)
    return None


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
    """Every operator's every key must hold; a key the request does not carry fails (as on AWS),
    except under an `...IfExists` operator, or under `ForAllValues:`, which IAM defines as true for an
    absent or empty key. An operator this module does not know fails too: a grant is never assumed."""
    for qualified, keys in condition.items():
        quantifier, _, operator = qualified.rpartition(":")
        if quantifier not in ("", "ForAllValues", "ForAnyValue"):
            return False
        if_exists = operator.endswith("IfExists")
        operator = operator.removesuffix("IfExists")
        for key, expected in keys.items():
            values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
            actual = context.get(key)
            if actual is None:
                if quantifier == "ForAllValues" or if_exists:
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

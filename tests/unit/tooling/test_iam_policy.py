"""What a call asks IAM for, and IAM's decision on it (devkit/localcloud/policy.py), as tables."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.localcloud.iam import ComponentRole
from devkit.localcloud.policy import (
    Access,
    conditions_hold,
    evaluate,
    expression_attributes,
    iam_prefix,
    requested_access,
)
from devkit.localcloud.recording import Checked, check, report

R, A = "us-east-1", "123456789012"
SQS = f"arn:aws:sqs:{R}:{A}"
DDB = f"arn:aws:dynamodb:{R}:{A}:table"


@pytest.mark.parametrize(
    ("prefix", "operation", "params", "expected"),
    [
        pytest.param(
            "sqs",
            "ReceiveMessage",
            {"QueueUrl": "http://127.0.0.1:5000/123456789012/jobs"},
            [Access("sqs:ReceiveMessage", f"{SQS}:jobs")],
            id="given a queue url then the queue's arn",
        ),
        pytest.param(
            "sqs",
            "DeleteMessageBatch",
            {"QueueUrl": "https://sqs/1/jobs"},
            [Access("sqs:DeleteMessage", f"{SQS}:jobs")],
            id="given a batch then the single-message action",
        ),
        pytest.param(
            "dynamodb",
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "ledger"}}, {"ConditionCheck": {"TableName": "ledger"}}]},
            [
                Access("dynamodb:PutItem", f"{DDB}/ledger", attributes=()),
                Access("dynamodb:ConditionCheckItem", f"{DDB}/ledger", attributes=()),
            ],
            id="given a transaction then each part's action on its table",
        ),
        pytest.param(
            "autoscaling",
            "SetDesiredCapacity",
            {"AutoScalingGroupName": "g"},
            [
                Access(
                    "autoscaling:SetDesiredCapacity",
                    f"arn:aws:autoscaling:{R}:{A}:autoScalingGroup:*:autoScalingGroupName/g",
                )
            ],
            id="given a group name then the group's arn",
        ),
        pytest.param(
            "autoscaling",
            "DescribeAutoScalingGroups",
            {},
            [Access("autoscaling:DescribeAutoScalingGroups", "*")],
            id="given no resource-level permission then star",
        ),
        pytest.param(
            "ssm",
            "SendCommand",
            {"DocumentName": "AWS-RunShellScript", "InstanceIds": ["i-1"]},
            [
                Access("ssm:SendCommand", f"arn:aws:ssm:{R}::document/AWS-RunShellScript"),
                Access("ssm:SendCommand", f"arn:aws:ec2:{R}:{A}:instance/i-1"),
            ],
            id="given a command then the document and each instance",
        ),
        pytest.param(
            "ssm",
            "GetParameter",
            {"Name": "/qs/pools"},
            [Access("ssm:GetParameter", f"arn:aws:ssm:{R}:{A}:parameter/qs/pools")],
            id="given a parameter path then its arn",
        ),
    ],
)
def test_requested_access(prefix: str, operation: str, params: dict[str, Any], expected: list[Access]) -> None:
    assert requested_access(prefix, operation, params.get, R, A) == expected


def test_given_cloudwatchs_signing_name_then_the_iam_prefix_is_cloudwatch() -> None:
    assert iam_prefix("monitoring") == "cloudwatch" and iam_prefix("sqs") == "sqs"


ALLOW_JOBS = {"Sid": "Jobs", "Effect": "Allow", "Action": ["sqs:ReceiveMessage"], "Resource": f"{SQS}:jobs*"}
TAGGED = {
    "Sid": "Tagged",
    "Effect": "Allow",
    "Action": "ssm:SendCommand",
    "Resource": "arn:aws:ec2:*:*:instance/*",
    "Condition": {"StringEquals": {"ssm:resourceTag/aws:autoscaling:groupName": ["g1"]}},
}


@pytest.mark.parametrize(
    ("statements", "access", "context", "allowed", "reason"),
    [
        pytest.param(
            [ALLOW_JOBS],
            Access("sqs:ReceiveMessage", f"{SQS}:jobs-1"),
            {},
            True,
            "Jobs",
            id="given a matching allow then granted",
        ),
        pytest.param(
            [ALLOW_JOBS],
            Access("sqs:ReceiveMessage", f"{SQS}:other"),
            {},
            False,
            "no statement grants it",
            id="given another resource then implicitly denied",
        ),
        pytest.param(
            [ALLOW_JOBS],
            Access("sqs:SendMessage", f"{SQS}:jobs"),
            {},
            False,
            "no statement grants it",
            id="given another action then denied",
        ),
        pytest.param(
            [ALLOW_JOBS, {"Sid": "No", "Effect": "Deny", "Action": "sqs:*", "Resource": "*"}],
            Access("sqs:ReceiveMessage", f"{SQS}:jobs"),
            {},
            False,
            "denied by No",
            id="given an explicit deny then it wins",
        ),
        pytest.param(
            [TAGGED],
            Access("ssm:SendCommand", f"arn:aws:ec2:{R}:{A}:instance/i-1"),
            {"ssm:resourceTag/aws:autoscaling:groupName": "g1"},
            True,
            "Tagged",
            id="given the tag then the condition holds",
        ),
        pytest.param(
            [TAGGED],
            Access("ssm:SendCommand", f"arn:aws:ec2:{R}:{A}:instance/i-1"),
            {"ssm:resourceTag/aws:autoscaling:groupName": "other"},
            False,
            "no statement grants it",
            id="given another group's tag then denied",
        ),
        pytest.param(
            [TAGGED],
            Access("ssm:SendCommand", f"arn:aws:ec2:{R}:{A}:instance/i-1"),
            {},
            False,
            "no statement grants it",
            id="given no tag then the condition fails",
        ),
    ],
)
def test_evaluate(
    statements: list[dict[str, Any]], access: Access, context: dict[str, str], allowed: bool, reason: str
) -> None:
    decision = evaluate([{"Version": "2012-10-17", "Statement": statements}], access, context)
    assert (decision.allowed, decision.reason) == (allowed, reason)


def test_given_a_call_the_role_does_not_grant_when_checked_then_it_is_listed_as_not_granted() -> None:
    role = ComponentRole("Worker:video", "WorkerRole", {}, {"consume": {"Statement": [ALLOW_JOBS]}})
    records = [
        {"component": "Worker:video", "action": "sqs:ReceiveMessage", "resource": f"{SQS}:jobs", "context": {}},
        {"component": "Worker:video", "action": "sqs:PurgeQueue", "resource": f"{SQS}:jobs", "context": {}},
        {"component": "Stranger", "action": "sqs:ReceiveMessage", "resource": f"{SQS}:jobs", "context": {}},
    ]
    checked = check(records, {"Worker:video": role})
    assert [c.allowed for c in checked] == [True, False, False]
    assert checked[1] == Checked("Worker:video", "sqs:PurgeQueue", f"{SQS}:jobs", False, "no statement grants it")
    listing = report(checked, {"Worker:video": role})
    assert f"sqs:PurgeQueue on {SQS}:jobs: NOT GRANTED" in listing
    assert f"sqs:ReceiveMessage on {SQS}:jobs: granted by Jobs" in listing


JOBS_ONLY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": f"{DDB}/ledger",
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["JOB#*"]}},
        }
    ]
}


@pytest.mark.parametrize(
    ("params", "allowed"),
    [
        pytest.param(
            {"TransactItems": [{"Put": {"TableName": "ledger", "Item": {"pk": {"S": "JOB#j-1"}, "sk": {"S": "A#1"}}}}]},
            True,
            id="given a job's item then its leading key matches JOB#*",
        ),
        pytest.param(
            {"TransactItems": [{"Put": {"TableName": "ledger", "Item": {"pk": {"S": "USER#u-1"}, "sk": {"S": "B"}}}}]},
            False,
            id="given a user's balance item then the job-only grant denies it",
        ),
        pytest.param(
            {
                "TransactItems": [
                    {"Update": {"TableName": "ledger", "Key": {"pk": {"S": "JOB#j-1"}, "sk": {"S": "JOB"}}}},
                    {"Update": {"TableName": "ledger", "Key": {"pk": {"S": "USER#u-1"}, "sk": {"S": "B"}}}},
                ]
            },
            False,
            id="given a transaction touching one job and one balance then it is denied",
        ),
    ],
)
def test_given_a_leading_keys_condition_when_items_are_written_then_each_item_is_judged_by_its_partition_key(
    params: dict[str, Any], allowed: bool
) -> None:
    accesses = requested_access("dynamodb", "TransactWriteItems", params.get, R, A, partition_keys={"ledger": "pk"})
    assert all(a.leading_keys for a in accesses)
    assert all(evaluate([JOBS_ONLY], a).allowed for a in accesses) is allowed


def test_given_an_item_request_without_the_tables_key_schema_then_a_leading_keys_grant_does_not_apply() -> None:
    # Unknown partition key: no leading keys are derived, and ForAllValues holds vacuously as on AWS;
    # the emulator and the recorder always pass the template's key schemas, so this never hides a call.
    (access,) = requested_access("dynamodb", "PutItem", {"TableName": "ledger", "Item": {"pk": {"S": "x"}}}.get, R, A)
    assert access.leading_keys is None


# --- DynamoDB fine-grained access control (devkit/localcloud/policy.py's docstring cites AWS's pages) ---
LEDGER_KEYS = {"ledger": "pk"}
#: A worker-like grant: its pool's job items only, these attributes only, nothing returned beyond them.
WRITE_FIELDS = {
    "Sid": "Fields",
    "Effect": "Allow",
    "Action": "dynamodb:UpdateItem",
    "Resource": f"{DDB}/ledger",
    "Condition": {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["JOB#video#*"]},
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "outcome", "ended_at"]},
        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]},
    },
}
#: AWS's read example: listed attributes only, and Select must then be SPECIFIC_ATTRIBUTES.
READ_FIELDS = {
    "Sid": "Reads",
    "Effect": "Allow",
    "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"],
    "Resource": f"{DDB}/ledger",
    "Condition": {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "outcome"]},
        "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
    },
}


def _job_key(pk: str = "JOB#video#j-1", sk: str = "JOB") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _update(expression: str, names: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "TableName": "ledger",
        "Key": _job_key(**extra.pop("key", {})),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names or {},
        "ExpressionAttributeValues": {":v": {"S": "x"}},
        **extra,
    }


@pytest.mark.parametrize(
    ("operation", "params", "statement", "allowed"),
    [
        pytest.param(
            "UpdateItem", _update("SET outcome = :v"), WRITE_FIELDS, True, id="given listed fields then granted"
        ),
        pytest.param(
            "UpdateItem",
            _update("SET #o = :v, #e = :v", {"#o": "outcome", "#e": "ended_at"}),
            WRITE_FIELDS,
            True,
            id="given placeholders for listed fields then they resolve and are granted",
        ),
        pytest.param(
            "UpdateItem",
            _update("SET #c = :v", {"#c": "credits"}),
            WRITE_FIELDS,
            False,
            id="given an unlisted field behind a placeholder then denied",
        ),
        pytest.param(
            "UpdateItem",
            _update("SET outcome = :v", ConditionExpression="#u = :v", ExpressionAttributeNames={"#u": "user_id"}),
            WRITE_FIELDS,
            False,
            id="given an unlisted field in the condition then denied (every named attribute counts)",
        ),
        pytest.param(
            "UpdateItem",
            _update("SET outcome.detail = :v REMOVE ended_at[0]"),
            WRITE_FIELDS,
            True,
            id="given nested paths then their top-level attributes count",
        ),
        pytest.param(
            "UpdateItem",
            _update("SET outcome = :v", key={"pk": "JOB#messaging#j-1"}),
            WRITE_FIELDS,
            False,
            id="given another pool's job then the leading key is denied",
        ),
        pytest.param(
            "UpdateItem",
            _update("SET outcome = :v", key={"pk": "USER#u-1", "sk": "ACCOUNT"}),
            WRITE_FIELDS,
            False,
            id="given a user's balance then the leading key is denied",
        ),
        pytest.param(
            "UpdateItem",
            _update("SET outcome = :v", ReturnValues="ALL_NEW"),
            WRITE_FIELDS,
            False,
            id="given ReturnValues ALL_NEW then denied (it returns every attribute)",
        ),
        pytest.param(
            "UpdateItem",
            _update("SET outcome = :v", ReturnValues="UPDATED_NEW"),
            WRITE_FIELDS,
            True,
            id="given ReturnValues UPDATED_NEW then granted",
        ),
        pytest.param(
            "PutItem",
            {"TableName": "ledger", "Item": {**_job_key(), "outcome": {"S": "x"}}},
            WRITE_FIELDS,
            False,
            id="given PutItem under an UpdateItem grant then denied",
        ),
        pytest.param(
            "DeleteItem",
            {"TableName": "ledger", "Key": _job_key()},
            WRITE_FIELDS,
            False,
            id="given DeleteItem under an UpdateItem grant then denied",
        ),
        pytest.param(
            "GetItem",
            {"TableName": "ledger", "Key": _job_key(), "ProjectionExpression": "outcome"},
            READ_FIELDS,
            True,
            id="given a read projecting listed fields then granted",
        ),
        pytest.param(
            "GetItem",
            {"TableName": "ledger", "Key": _job_key()},
            READ_FIELDS,
            False,
            id="given a read with no projection then Select is ALL_ATTRIBUTES and denied",
        ),
        pytest.param(
            "Query",
            {
                "TableName": "ledger",
                "KeyConditionExpression": "pk = :p",
                "ExpressionAttributeValues": {":p": {"S": "JOB#video#j-1"}},
                "ProjectionExpression": "sk, outcome",
            },
            READ_FIELDS,
            True,
            id="given a query projecting listed fields then granted",
        ),
        pytest.param(
            "Query",
            {
                "TableName": "ledger",
                "KeyConditionExpression": "pk = :p",
                "FilterExpression": "credits > :p",
                "ExpressionAttributeValues": {":p": {"S": "JOB#video#j-1"}},
                "ProjectionExpression": "sk, outcome",
            },
            READ_FIELDS,
            False,
            id="given a query filtering on an unlisted field then denied",
        ),
        pytest.param(
            "BatchGetItem",
            {"RequestItems": {"ledger": {"Keys": [_job_key()], "ProjectionExpression": "outcome"}}},
            READ_FIELDS,
            True,
            id="given a batch read projecting listed fields then granted",
        ),
        pytest.param(
            "BatchGetItem",
            {"RequestItems": {"ledger": {"Keys": [_job_key()]}}},
            READ_FIELDS,
            False,
            id="given a batch read with no projection then denied",
        ),
    ],
)
def test_given_fine_grained_conditions_then_the_request_is_judged_as_dynamodb_judges_it(
    operation: str, params: dict[str, Any], statement: dict[str, Any], allowed: bool
) -> None:
    accesses = requested_access("dynamodb", operation, params.get, R, A, partition_keys=LEDGER_KEYS)
    assert accesses
    decisions = [evaluate([{"Statement": [statement]}], a) for a in accesses]
    assert all(d.allowed for d in decisions) is allowed, decisions


@pytest.mark.parametrize(
    ("parts", "allowed"),
    [
        pytest.param(
            [
                {"Update": _update("SET outcome = :v")},
                {"Update": _update("SET ended_at = :v", key={"sk": "ATTEMPT#1"})},
            ],
            True,
            id="given two updates of listed fields on its pool's job then each is granted as UpdateItem",
        ),
        pytest.param(
            [{"Update": _update("SET outcome = :v")}, {"Update": _update("SET #s = :v", {"#s": "status"})}],
            False,
            id="given one part updating an unlisted field then the transaction is denied",
        ),
        pytest.param(
            [{"Put": {"TableName": "ledger", "Item": {**_job_key(sk="ATTEMPT#1"), "outcome": {"S": "x"}}}}],
            False,
            id="given a Put part then it needs PutItem, which the grant lacks",
        ),
        pytest.param(
            [
                {
                    "ConditionCheck": {
                        "TableName": "ledger",
                        "Key": _job_key(),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            ],
            False,
            id="given a ConditionCheck part then it needs ConditionCheckItem",
        ),
    ],
)
def test_given_a_transaction_then_each_part_is_judged_as_its_single_item_action(
    parts: list[dict[str, Any]], allowed: bool
) -> None:
    accesses = requested_access(
        "dynamodb", "TransactWriteItems", {"TransactItems": parts}.get, R, A, partition_keys=LEDGER_KEYS
    )
    assert len(accesses) == len(parts)
    assert all(evaluate([{"Statement": [WRITE_FIELDS]}], a).allowed for a in accesses) is allowed


@pytest.mark.parametrize(
    ("expression", "names", "expected"),
    [
        pytest.param("SET a = :v, b = if_not_exists(b, :w)", {}, {"a", "b"}, id="given a function then not a name"),
        pytest.param("attribute_not_exists(#s) OR #s = :r", {"#s": "status"}, {"status"}, id="given a placeholder"),
        pytest.param("SET a.b.c = :v REMOVE d[1].e", {}, {"a", "d"}, id="given nested paths then the top level"),
        pytest.param("ADD balance :a, reserved :b", {}, {"balance", "reserved"}, id="given ADD then each target"),
        pytest.param("size(tags) > :n AND contains(x, :y)", {}, {"tags", "x"}, id="given functions' arguments"),
    ],
)
def test_expression_attributes(expression: str, names: dict[str, str], expected: set[str]) -> None:
    assert expression_attributes(expression, names) == expected


@pytest.mark.parametrize(
    ("condition", "context", "held"),
    [
        pytest.param({"StringEqualsIfExists": {"k": "a"}}, {}, True, id="given IfExists and no key then it holds"),
        pytest.param({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"}, False, id="given IfExists and another value"),
        pytest.param({"StringEquals": {"k": "a"}}, {}, False, id="given no IfExists and no key then it fails"),
        pytest.param({"ForAllValues:StringEquals": {"k": ["a"]}}, {"k": []}, True, id="given ForAllValues and empty"),
        pytest.param({"ForAnyValue:StringEquals": {"k": ["a"]}}, {}, False, id="given ForAnyValue and no key"),
        pytest.param({"ForAllValues:StringLike": {"k": ["J#*"]}}, {"k": ["J#1", "U#1"]}, False, id="given one outside"),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], held: bool) -> None:
    assert conditions_hold(condition, context) is held

"""What a call asks IAM for, and IAM's decision on it (devkit/localcloud/policy.py), as tables."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.localcloud.iam import ComponentRole
from devkit.localcloud.policy import Access, evaluate, iam_prefix, requested_access
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
            [Access("dynamodb:PutItem", f"{DDB}/ledger"), Access("dynamodb:ConditionCheckItem", f"{DDB}/ledger")],
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

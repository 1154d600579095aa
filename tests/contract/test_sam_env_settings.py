"""The settings refuse what SAM CLI leaves of an unresolved reference, and only that; `env-vars`' own errors.

tests/contract/test_sam_env.py runs SAM CLI itself; these tables pin the rule on each kind of value a
real deployment passes (table names, ARNs, SSM paths, group lists, JSON) and each kind SAM CLI leaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from devkit.cli import main
from devkit.commands.envvars import TargetNotFound, container_endpoint, stack_env_file
from queue_scaler.settings import (
    DlqRefundSettings,
    FunctionSettings,
    LifecycleSettings,
    MetricsSettings,
    ProducerSettings,
    ScalerSettings,
)

TIMINGS = '{"queue-scaler-dev-video": {"drain_seconds": 900, "terminate_hook_timeout_seconds": 1840}}'
#: A valid environment per model, with the values a deployed stack (or a test's moto) passes.
VALID: dict[type[FunctionSettings], dict[str, str]] = {
    ScalerSettings: {"POOL_CONFIG_PARAMETER": "/queue-scaler/queue-scaler-dev/pools", "HISTORY_TABLE": "history"},
    MetricsSettings: {
        "MEASURED_POOLS_PARAMETER": "/queue-scaler/queue-scaler-dev/measured-pools",
        "DEAD_LETTER_SUFFIX": "-dlq",
        "ENVIRONMENT": "prod",
    },
    LifecycleSettings: {
        "ACTIONS_TABLE": "queue-scaler-dev-lifecycle-actions",
        "GROUP_NAMES": "queue-scaler-dev-video,Video.Outputs",
        "POOL_TIMINGS": TIMINGS,
    },
    DlqRefundSettings: {
        "LEDGER_TABLE": "Ledger",
        "PARKING_TABLE": "queue-scaler-dev-parked-dead-letters",
        "NOTICE_TOPIC_ARN": "arn:aws:sns:ap-northeast-2:123456789012:queue-scaler-dev-notices",
    },
    ProducerSettings: {"LEDGER_TABLE": "ledger"},
}


def _load(model: type[FunctionSettings], environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return model()


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
def test_given_real_names_arns_paths_and_json_when_settings_load_then_they_are_accepted(
    model: type[FunctionSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _load(model, VALID[model], monkeypatch)
    for name, value in VALID[model].items():
        if name not in {"GROUP_NAMES", "POOL_TIMINGS"}:
            assert getattr(loaded, name.lower()) == value


@pytest.mark.parametrize(
    ("model", "variable", "value", "named"),
    [
        (ScalerSettings, "POOL_CONFIG_PARAMETER", "PoolConfigParameter", "POOL_CONFIG_PARAMETER=PoolConfigParameter"),
        (ScalerSettings, "HISTORY_TABLE", "HistoryTable", "HISTORY_TABLE=HistoryTable"),
        (MetricsSettings, "ENVIRONMENT", "EnvironmentName", "ENVIRONMENT=EnvironmentName"),
        (
            MetricsSettings,
            "MEASURED_POOLS_PARAMETER",
            "MetricsPoolConfigParameter",
            "MEASURED_POOLS_PARAMETER=MetricsPoolConfigParameter",
        ),
        (MetricsSettings, "TARGET_TRACKING_POOLS", "${VideoPool.Outputs.TrackedName},x", "TARGET_TRACKING_POOLS holds"),
        (LifecycleSettings, "ACTIONS_TABLE", "LifecycleActionsTable", "ACTIONS_TABLE=LifecycleActionsTable"),
        (LifecycleSettings, "GROUP_NAMES", "${VideoPool.Outputs.GroupName},x", "GROUP_NAMES holds"),
        (
            LifecycleSettings,
            "POOL_TIMINGS",
            '{"${VideoPool.Outputs.GroupName}": {"drain_seconds": 9, "terminate_hook_timeout_seconds": 900}}',
            "POOL_TIMINGS holds the unresolved reference ${VideoPool.Outputs.GroupName}",
        ),
        (LifecycleSettings, "GROUP_NAMES", "VideoPool.Outputs.GroupName", "VideoPool.Outputs.GroupName"),
        (DlqRefundSettings, "LEDGER_TABLE", "LedgerTable", "LEDGER_TABLE=LedgerTable"),
        (DlqRefundSettings, "NOTICE_TOPIC_ARN", "NoticeTopic", "NOTICE_TOPIC_ARN=NoticeTopic"),
        (DlqRefundSettings, "UNCHARGED_PLANS", "UnchargedPlans", "UNCHARGED_PLANS=UnchargedPlans"),
        (ProducerSettings, "LEDGER_TABLE", "LedgerTable", "LEDGER_TABLE=LedgerTable"),
        (DlqRefundSettings, "PARKING_TABLE", "${AWS::StackName}-parked", "${AWS::StackName}"),
    ],
)
def test_given_an_unresolved_reference_when_settings_load_then_they_refuse_naming_it_and_env_vars(
    model: type[FunctionSettings], variable: str, value: str, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {**VALID[model], variable: value}
    with pytest.raises(ValidationError) as refused:
        _load(model, environment, monkeypatch)
    message = str(refused.value)
    assert named in message
    assert "--env-vars env.json" in message and "queue-scaler env-vars --local" in message


@pytest.mark.parametrize(
    ("endpoint", "host", "expected"),
    [
        ("http://127.0.0.1:44653", "host.docker.internal", "http://host.docker.internal:44653"),
        ("http://127.0.0.1:5000/", "127.0.0.1", "http://127.0.0.1:5000/"),
        ("http://localhost", "10.0.0.2", "http://10.0.0.2"),
    ],
)
def test_given_the_local_endpoint_then_the_container_reaches_it_on_the_given_host(
    endpoint: str, host: str, expected: str
) -> None:
    assert container_endpoint(endpoint, host) == expected


def test_given_no_local_cloud_when_env_vars_local_then_exit_1_saying_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["env-vars", "--local", "--state-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no local cloud runs" in captured.err and "queue-scaler local up" in captured.err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["env-vars", "--local", "--region", "us-east-1"], "--region and --endpoint-url go with --stack"),
        (["env-vars", "--stack", "s", "--state-dir", "d"], "--state-dir goes with --local"),
    ],
)
def test_given_an_option_of_the_other_target_then_exit_2_naming_it(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert said in capsys.readouterr().err


def test_given_a_stack_that_does_not_exist_when_env_vars_stack_then_the_error_names_it() -> None:
    client = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id queue-scaler-nope does not exist", 400
        )
        with pytest.raises(TargetNotFound, match="cannot describe stack queue-scaler-nope: Stack with id"):
            stack_env_file(client, "queue-scaler-nope")


def test_given_no_region_when_env_vars_stack_then_exit_1_naming_the_stack_and_the_cause(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert main(["env-vars", "--stack", "queue-scaler-dev"]) == 1
    err = capsys.readouterr().err
    assert "cannot read stack queue-scaler-dev" in err and "region" in err


def test_given_the_templates_empty_endpoint_then_a_deployed_functions_clients_use_awss_endpoints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The template declares AWS_ENDPOINT_URL="" so that `--env-vars` can set it; deployed, it must
    # change nothing.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    session = boto3.session.Session(region_name="ap-northeast-2", aws_access_key_id="x", aws_secret_access_key="x")
    assert session.client("dynamodb").meta.endpoint_url == "https://dynamodb.ap-northeast-2.amazonaws.com"
    assert session.client("sqs").meta.endpoint_url == "https://sqs.ap-northeast-2.amazonaws.com"

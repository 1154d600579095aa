"""`queue-scaler submit`, `credits deposit`, `jobs show` under moto: exit codes, idempotency, no orphan reservation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from devkit.cli import main
from devkit.localcloud.server import make_dynamodb_atomic
from queue_scaler.credits.adapters.ledger import DynamoLedger
from queue_scaler.shared.adapters import clients
from tests.functional.moto_stack import create_ledger_table, create_queue, drain


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status


@pytest.fixture
def stack(aws: None, tmp_path: Path) -> dict[str, Any]:
    make_dynamodb_atomic()
    queues = {plan: create_queue(f"s-video-{plan}") for plan in ("pro", "free")}
    config = tmp_path / "pools.json"
    config.write_text(
        json.dumps(
            {
                "pools": [
                    {
                        "name": "video",
                        "max_size": 4,
                        "queues": [{"name": f"s-video-{p}", "target_per_instance": 2} for p in ("pro", "free")],
                    }
                ]
            }
        )
    )
    return {"ledger": create_ledger_table(), "config": str(config), "queues": queues}


def cli(stack: dict[str, Any], capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main([*args, "--ledger-table", stack["ledger"]])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip().startswith("{") else out), err


def submit(stack: dict[str, Any], capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, Any, str]:
    args = ["submit", "--kind", "video.transcode", "--plan", "pro", "--user", "u-1", "--credits", "12"]
    return cli(stack, capsys, *args, "--config", stack["config"], *more)


def reservation_items(stack: dict[str, Any]) -> list[str]:
    items = clients.dynamodb().scan(TableName=stack["ledger"])["Items"]
    return sorted(f"{i['pk']['S']}|{i['sk']['S']}" for i in items if "RESERVE" in i["sk"]["S"] or i["sk"]["S"] == "JOB")


def test_given_a_deposit_repeated_then_the_balance_counts_it_once(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        code, out, _ = cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")
        assert (code, out) == (0, {"user_id": "u-1", "balance": 50})
    code, out, _ = cli(stack, capsys, "credits", "deposit", "u-1", "5", "--reference", "purchase-2")
    assert out["balance"] == 55


def test_case_5_given_a_purchase_reference_when_another_user_deposits_it_then_exit_1_naming_it_and_its_owner(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")
    assert (code, out) == (0, {"user_id": "u-1", "balance": 50})
    code, out, err = cli(stack, capsys, "credits", "deposit", "u-2", "50", "--reference", "purchase-1")
    assert code == 1 and out == "" and "purchase-1" in err and "u-1" in err
    ledger = DynamoLedger(stack["ledger"], clients.dynamodb())
    assert ledger.account("u-2") is None, "one purchase credits one account, once"
    account = ledger.account("u-1")
    assert account is not None and account.balance == 50


def test_given_a_submit_retried_with_the_same_job_id_then_one_message_is_sent(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")
    code, first, _ = submit(stack, capsys, "--job-id", "j-1", "--payload", '{"seconds": 1}')
    assert code == 0 and first == {"job_id": "j-1", "queue": "s-video-pro", "reserved": 12, "duplicate": False}
    code, again, _ = submit(stack, capsys, "--job-id", "j-1", "--payload", '{"seconds": 1}')
    assert code == 0 and again["duplicate"] is True
    [body] = drain(stack["queues"]["pro"])
    assert json.loads(body)["job_id"] == "j-1" and json.loads(body)["payload"] == {"seconds": 1}
    account = DynamoLedger(stack["ledger"]).account("u-1")
    assert account is not None and (account.balance, account.reserved) == (38, 12)
    code, shown, _ = cli(stack, capsys, "jobs", "show", "j-1", "--json")
    assert code == 0 and (shown["outcome"], shown["credits"], shown["plan"], shown["attempts"]) == (
        "pending",
        12,
        "pro",
        [],
    )


def test_given_a_send_sqs_rejects_then_no_reservation_is_left(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")

    def refuse(**_: Any) -> Any:
        return _Response(403), {
            "Error": {"Code": "AccessDenied", "Message": "not allowed"},
            "ResponseMetadata": {"HTTPStatusCode": 403, "RetryAttempts": 0},
        }

    clients.sqs().meta.events.register("before-call.sqs.SendMessage", refuse)
    code, _, err = submit(stack, capsys, "--job-id", "j-2")
    assert code == 1 and "nothing was sent" in err
    assert reservation_items(stack) == []
    account = DynamoLedger(stack["ledger"]).account("u-1")
    assert account is not None and (account.balance, account.reserved) == (50, 0)
    code, _, _ = cli(stack, capsys, "jobs", "show", "j-2")
    assert code == 1
    clients.sqs().meta.events.unregister("before-call.sqs.SendMessage", refuse)
    code, out, _ = submit(stack, capsys, "--job-id", "j-2")  # retried once SQS is back: sent once
    assert code == 0 and not out["duplicate"] and len(drain(stack["queues"]["pro"])) == 1


def test_given_a_send_whose_answer_is_lost_then_exit_4_the_reservation_is_kept_and_a_retry_sends_again(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")

    def time_out(**_: Any) -> None:  # SQS took the message; the client saw a read timeout
        raise ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")

    clients.sqs().meta.events.register("after-call.sqs.SendMessage", time_out)
    code, _, err = submit(stack, capsys, "--job-id", "j-3")
    clients.sqs().meta.events.unregister("after-call.sqs.SendMessage", time_out)
    assert code == 4, err
    assert "j-3" in err and "may have been sent" in err and "is safe" in err
    assert reservation_items(stack) != []
    account = DynamoLedger(stack["ledger"]).account("u-1")
    assert account is not None and (account.balance, account.reserved) == (38, 12)
    code, shown, _ = cli(stack, capsys, "jobs", "show", "j-3", "--json")
    assert (code, shown["send"], shown["outcome"]) == (0, "unknown", "pending")
    code, out, err = submit(stack, capsys, "--job-id", "j-3")  # retried at once: sends a second copy
    assert code == 0 and not out["duplicate"], err
    assert [json.loads(b)["job_id"] for b in drain(stack["queues"]["pro"])] == ["j-3", "j-3"]
    code, shown, _ = cli(stack, capsys, "jobs", "show", "j-3", "--json")
    assert (code, shown["send"]) == (0, "sent")
    account = DynamoLedger(stack["ledger"]).account("u-1")
    assert account is not None and (account.balance, account.reserved) == (38, 12), "reserved once"


@pytest.mark.parametrize(
    ("name", "args", "code", "says"),
    [
        ("given too few credits then exit 3", ["--credits", "51"], 3, "insufficient credits"),
        ("given a kind no pool serves then exit 2", ["--kind", "audio.mix"], 2, "kind 'audio.mix'"),
        ("given a plan the pool has no queue for then exit 2", ["--plan", "studio"], 2, "plan 'studio'"),
        ("given a payload that is not an object then exit 2", ["--payload", "[1]"], 2, "--payload"),
        ("given a bad user id then exit 2 naming it", ["--user", "has space"], 2, "user_id"),
    ],
)
def test_bad_submissions_send_nothing(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str], *, name: str, args: list[str], code: int, says: str
) -> None:
    cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")
    got, _, err = submit(stack, capsys, *args)
    assert (got, says in err) == (code, True), (name, err)
    assert drain(stack["queues"]["pro"]) == [] and reservation_items(stack) == []


def test_given_no_ledger_table_then_exit_2_naming_it(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEDGER_TABLE", raising=False)
    assert main(["jobs", "show", "j-1"]) == 2
    assert "--ledger-table" in capsys.readouterr().err


def test_given_local_without_a_local_cloud_then_exit_2(
    aws: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["jobs", "show", "j-1", "--local", "--state-dir", str(tmp_path)]) == 2
    assert "local up" in capsys.readouterr().err


def test_given_a_state_dir_without_local_then_exit_2_naming_the_option(
    aws: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["jobs", "show", "j-1", "--state-dir", str(tmp_path)]) == 2
    assert "--state-dir" in capsys.readouterr().err


def _config_with(tmp_path: Path, queues: list[dict[str, Any]]) -> str:
    config = tmp_path / "plans.json"
    config.write_text(json.dumps({"pools": [{"name": "video", "max_size": 4, "queues": queues}]}))
    return str(config)


def test_given_a_plan_only_the_configuration_names_then_submit_delivers_to_its_queue(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gold = create_queue("s-video-gold")
    config = _config_with(tmp_path, [{"name": "s-video-gold", "target_per_instance": 1}, *_PRO_FREE])
    cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")
    args = ["submit", "--kind", "video.x", "--plan", "gold", "--user", "u-1", "--credits", "3", "--job-id", "j-g"]
    code, out, err = cli(stack, capsys, *args, "--config", config)
    assert code == 0, err
    assert out["queue"] == "s-video-gold"
    [body] = drain(gold)
    assert json.loads(body)["plan"] == "gold"


def test_given_a_plan_no_queue_serves_then_submit_exits_2_naming_the_plans_that_exist(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["submit", "--kind", "video.x", "--plan", "platinum", "--user", "u-1", "--credits", "3"]
    code, _, err = cli(stack, capsys, *args, "--config", stack["config"])
    assert code == 2
    assert "plan 'platinum': pool video has no queue for it (its plans: pro, free)" in err


def test_given_a_configured_queue_that_does_not_exist_then_submit_names_it_and_keeps_nothing(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _config_with(tmp_path, [{"name": "s-video-typo", "plan": "pro", "target_per_instance": 1}])
    cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")
    args = ["submit", "--kind", "video.x", "--plan", "pro", "--user", "u-1", "--credits", "3", "--job-id", "j-t"]
    code, _, err = cli(stack, capsys, *args, "--config", config)
    assert code == 1
    assert "queue s-video-typo" in err and "NonExistentQueue" in err and "nothing was sent" in err
    assert reservation_items(stack) == []


def test_given_a_config_file_with_the_dev_stacks_names_and_the_local_cloud_then_they_are_mapped(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    """`submit --config FILE --local` maps `queue-scaler-dev-*` as explain does (the local stack's names)."""
    from devkit.commands.common import AwsTarget
    from devkit.commands.producer import _producer

    config = _config_with(tmp_path, [{"name": "queue-scaler-dev-video-pro", "target_per_instance": 2}])
    args = argparse.Namespace(config=Path(config), parameter=None, ledger_table=stack["ledger"])
    service = _producer(args, AwsTarget(None, local_stack="queue-scaler-local"))
    assert service.route("video.x", "pro").queue == "queue-scaler-local-video-pro"
    service = _producer(args, AwsTarget(None))
    assert service.route("video.x", "pro").queue == "queue-scaler-dev-video-pro"


_PRO_FREE = [{"name": f"s-video-{p}", "target_per_instance": 2} for p in ("pro", "free")]


def test_case_6_amounts_and_ids_out_of_bounds_are_refused_naming_the_field_and_limit_exit_2(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23, case 6: a 10^40 deposit, a user id with a control character, a free-plan job of 10^30
    credits, a deposit past the balance cap and a job id with an escape: each exit 2, one line naming
    the field and its limit, nothing credited, reserved or sent."""
    for name in ("DEPOSIT_CAP", "BALANCE_CAP", "REFUND_CAP"):
        monkeypatch.delenv(name, raising=False)
    refusals = [
        (["credits", "deposit", "u-1", str(10**40), "--reference", "p-big"], "credits", "deposit cap of 1000000000"),
        (["credits", "deposit", "u\x07-1", "5", "--reference", "p-bell"], "user_id", "printable ASCII"),
        (["credits", "deposit", "u-1", "5", "--reference", "p\n1"], "reference", "printable ASCII"),
        (["jobs", "show", "j\x1b[2J"], "job_id", "printable ASCII"),
    ]
    for args, field, limit in refusals:
        code, _, err = cli(stack, capsys, *args)
        assert (code, err.count("\n"), f"{field}: " in err, limit in err) == (2, 1, True, True), err
    assert DynamoLedger(stack["ledger"]).account("u-1") is None

    cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-1")
    code, _, err = submit(stack, capsys, "--plan", "free", "--credits", str(10**30))
    assert (code, err.count("\n")) == (2, 1), err
    assert f"credits: {10**30} is above plan free's cap of 10000" in err
    code, _, err = submit(stack, capsys, "--user", "u\x00")
    assert (code, "user_id: " in err, err.count("\n")) == (2, True, 1), err
    assert drain(stack["queues"]["free"]) == [] and reservation_items(stack) == []

    monkeypatch.setenv("BALANCE_CAP", "100")
    monkeypatch.setenv("DEPOSIT_CAP", "100")
    code, _, err = cli(stack, capsys, "credits", "deposit", "u-1", "51", "--reference", "purchase-2")
    assert (code, err.count("\n")) == (2, 1), err
    assert "credits: 51 would take the balance of user 'u-1' (50) above the balance cap of 100" in err
    assert "deposit at most 50" in err
    code, out, _ = cli(stack, capsys, "credits", "deposit", "u-1", "50", "--reference", "purchase-2")
    assert (code, out) == (0, {"user_id": "u-1", "balance": 100})
    monkeypatch.setenv("DEPOSIT_CAP", "101")
    code, _, err = cli(stack, capsys, "credits", "deposit", "u-1", "1", "--reference", "purchase-3")
    assert (code, "DEPOSIT_CAP (101) is above BALANCE_CAP (100)" in err) == (2, True), err

"""`queue-scaler explain` reads queues and groups and prints decisions, changing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit.cli import main
from tests.functional.moto_stack import create_group, create_queue, desired_of, pool_config, put_config

pytestmark = pytest.mark.usefixtures("aws")


def test_given_a_config_file_when_explaining_then_decisions_are_printed_and_nothing_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create_group("video", desired=1)
    url = create_queue("video-pro", messages=40)
    config = tmp_path / "pools.json"
    config.write_text(json.dumps({"pools": [pool_config("video", [("video-pro", url, 8)])]}))
    assert main(["explain", "--config", str(config), "--json"]) == 0
    [outcome] = json.loads(capsys.readouterr().out)
    assert outcome["decision"]["desired"] == 5
    assert outcome["decision"]["explanation"][0] == "video-pro: backlog 40 (40 visible + 0 in flight) / target 8 = 5"
    assert outcome["applied"] is False and desired_of("video") == 1


def test_given_the_ssm_parameter_when_explaining_as_a_table_then_each_pool_is_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_group("ai", desired=0)
    url = create_queue("ai-free", messages=3)
    put_config("/qs/pools", [pool_config("ai", [("ai-free", url, 15)]), pool_config("gone", [("ai-free", url, 1)])])
    assert main(["explain", "--parameter", "/qs/pools"]) == 1  # one pool has no group: reported, exit 1
    out = capsys.readouterr().out
    assert "from zero: backlog 3 > activation 0, recommend 1" in out
    assert "Auto Scaling group 'gone' not found" in out


def test_given_an_invalid_config_when_explaining_then_it_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "pools.yaml"
    config.write_text("pools:\n  - name: video\n    max_size: 3\n    queues: [{name: q, target_per_instance: 0}]\n")
    assert main(["explain", "--config", str(config)]) == 2
    assert "pools.0.queues.0.target_per_instance" in capsys.readouterr().err


def test_given_a_misspelt_queue_when_explaining_then_it_exits_1_naming_the_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create_group("video", desired=1)
    url = create_queue("video-pro", messages=4)
    config = tmp_path / "pools.json"
    pool = pool_config("video", [("video-pro", url, 8), ("video-fre", None, 8)])
    config.write_text(json.dumps({"pools": [pool]}))
    assert main(["explain", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "pool video: queue video-fre: unavailable" in err


def test_given_no_credentials_when_explaining_then_it_exits_2_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    config = tmp_path / "pools.json"
    config.write_text(json.dumps({"pools": [pool_config("video", [("video-pro", None, 8)])]}))
    assert main(["explain", "--config", str(config)]) == 2
    assert "no AWS credentials found" in capsys.readouterr().err

"""`queue-scaler decide` against the contract's own example (docs/contracts.md section 1)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devkit.cli import main

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "docs" / "contracts.md"
REQUEST = ROOT / "examples" / "request.json"


def contract_examples() -> tuple[str, dict[str, object]]:
    """The request and response JSON blocks of section 1, read from the contract itself."""
    section = CONTRACTS.read_text(encoding="utf-8").split("## 2.")[0]
    blocks = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
    return blocks[0], json.loads(blocks[1])


def test_given_the_contract_example_when_deciding_then_the_contract_response_is_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    request, expected = contract_examples()
    # The runnable example is the contract's request, byte for byte.
    assert REQUEST.read_text(encoding="utf-8") == request
    assert main(["decide", str(REQUEST)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert {k: answer[k] for k in expected} == expected


def test_given_an_invalid_request_when_deciding_then_it_exits_2_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "now": 1,
        "pool": {"name": "v", "max_size": 3, "queues": [{"name": "q", "target_per_instance": -3}]},
        "observation": {"queues": [], "fleet": {"desired": 0}},
    }
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps(bad)))
    assert main(["decide", "-"]) == 2
    err = capsys.readouterr().err
    assert "pool.queues.0.target_per_instance" in err


def test_given_a_missing_file_when_deciding_then_it_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decide", "/nonexistent/request.json"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_given_an_observation_of_an_unknown_queue_when_deciding_then_it_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "now": 1,
        "pool": {"name": "v", "max_size": 3, "queues": [{"name": "q", "target_per_instance": 3}]},
        "observation": {"queues": [{"name": "typo", "visible": 3}], "fleet": {"desired": 0}},
    }
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps(bad)))
    assert main(["decide", "-"]) == 2
    assert "observation.queues.0.name" in capsys.readouterr().err

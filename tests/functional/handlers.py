"""Loads a function's handler module the way Lambda does (functions/<name>/app.py), and a fake context."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_handler(function: str) -> ModuleType:
    """A fresh import of functions/<function>/app.py, so module-level caches start empty."""
    path = ROOT / "functions" / function / "app.py"
    name = f"handler_{function}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def event(*parts: str) -> dict[str, Any]:
    """A sample event from events/ (the single source of sample payloads)."""
    return json.loads(ROOT.joinpath("events", *parts).read_text())


@dataclass
class FakeContext:
    """The LambdaContext fields Powertools reads."""

    remaining_ms: int = 60_000
    function_name: str = "queue-scaler-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:queue-scaler-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms

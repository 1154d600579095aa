"""Runs a function's handler in-process, as Lambda would: its module loaded fresh, a context with a deadline."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_handler_module(code_dir: Path, module: str = "app") -> ModuleType:
    """A fresh import of `<code_dir>/<module>.py`, so module-level caches start empty (a cold start)."""
    path = code_dir / f"{module}.py"
    name = f"lambda_{code_dir.name}_{module}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler module at {path}")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


@dataclass
class LocalContext:
    """The LambdaContext fields handlers and Powertools read, with a real deadline."""

    timeout_seconds: float = 60.0
    function_name: str = "local"
    memory_limit_in_mb: int = 128  # Lambda's default; invoke and the local cloud pass the template's
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))

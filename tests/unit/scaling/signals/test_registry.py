"""The signal registry: every module of queue_scaler.scaling.domain.signals is a signal, loaded without a list,
and registering a signal makes it usable by name (settings, checks, look-back)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from queue_scaler.scaling.domain import signals
from queue_scaler.scaling.domain.pool import PoolConfig
from tests.unit.scaling.signals.toy import ToySettings, ToySignal

ROOT = Path(__file__).resolve().parents[4]
BASE = {"name": "p", "max_size": 5, "queues": [{"name": "q", "target_per_instance": 1}], "seconds_per_message": 10}


class LateSignal(ToySignal):
    """The toy signal under a name nothing registered at import, looking back 900 s."""

    name = "late"

    def check(self, pool: PoolConfig, settings: BaseModel) -> None:
        if pool.slots_per_instance > 1:
            raise ValueError("signals.late works with one slot per instance")

    def history_seconds(self, settings: BaseModel) -> float:
        return 900.0


@pytest.fixture
def late() -> Iterator[LateSignal]:
    signal = LateSignal()
    signals.register(signal)
    yield signal
    signals._REGISTRY.pop(signal.name)


def test_every_signal_module_registers_the_signal_it_is_named_after() -> None:
    # The list comes from the package itself: a new module is a new signal, with no list to edit.
    known = signals.registered()
    modules = signals.modules()
    assert modules, "no signal module found"
    for module in modules:
        assert module in known, f"queue_scaler/scaling/domain/signals/{module}.py registers no signal named {module!r}"
        signal = known[module]
        assert type(signal).__module__ == f"queue_scaler.scaling.domain.signals.{module}"
        assert issubclass(signal.settings, BaseModel)
        # Empty for a signal that reads only the clock (schedule): nothing extra is observed for it.
        assert isinstance(signal.inputs, frozenset), f"signal {module!r} declares no input kinds"
        assert all(isinstance(kind, str) for kind in signal.inputs)


def test_every_signal_module_is_loaded_only_through_the_registry() -> None:
    # No product module imports a signal module by name to register it: the registry loads them.
    product = ROOT / "layers" / "core" / "queue_scaler"
    for path in product.rglob("*.py"):
        if path.parent.name == "signals" and path.parent.parent.name == "domain":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "queue_scaler.scaling.domain.signals":
                modules = set(signals.modules())
                assert not modules & {alias.name for alias in node.names}, f"{path} imports a signal module"


def test_every_signal_module_has_its_section_in_the_docs() -> None:
    doc = (ROOT / "docs" / "signals.md").read_text()
    for name in signals.modules():
        assert re.search(rf"^## `{name}`", doc, re.M), f"docs/signals.md has no `## `{name}`` section"


def test_given_a_signal_registered_when_looked_up_then_it_comes_back(late: LateSignal) -> None:
    assert signals.registered()["late"] is late
    assert signals.get("late") is late


def test_given_a_signal_registered_when_a_pool_names_it_then_its_settings_are_validated(late: LateSignal) -> None:
    pool = PoolConfig.model_validate(BASE | {"signals": {"late": {"instances": 2}}})
    assert pool.signals["late"] == ToySettings(instances=2)
    with pytest.raises(ValueError, match=r"signals\.late: instances"):
        PoolConfig.model_validate(BASE | {"signals": {"late": {"instances": -1}}})


def test_given_a_signal_registered_when_a_pool_names_it_then_its_own_check_runs(late: LateSignal) -> None:
    with pytest.raises(ValueError, match=r"signals\.late works with one slot per instance"):
        PoolConfig.model_validate(BASE | {"slots_per_instance": 2, "signals": {"late": {"instances": 2}}})


def test_given_a_signal_looking_back_further_than_the_behavior_then_the_history_keeps_its_window(
    late: LateSignal,
) -> None:
    pool = PoolConfig.model_validate(BASE | {"signals": {"backlog": {}, "late": {"instances": 1}}})
    assert pool.behavior.longest_window_seconds() == 300
    assert pool.history_seconds() == 900

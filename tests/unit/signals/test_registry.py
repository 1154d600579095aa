"""Registering a signal makes it usable by name: a pool can name it, its settings are validated by
the model it registered with, and the decision calls it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queue_scaler.config import PoolConfig
from queue_scaler.domain import signals
from tests.unit.signals.toy import ToySettings, ToySignal


class LateSignal(ToySignal):
    """The toy signal under a name nothing registered at import."""

    name = "late"


@pytest.fixture
def late() -> Iterator[LateSignal]:
    signal = LateSignal()
    signals.register(signal, ToySettings)
    yield signal
    signals._REGISTRY.pop(signal.name)


def test_given_a_signal_registered_when_looked_up_then_it_comes_back_with_its_settings(late: LateSignal) -> None:
    spec = signals.registered()["late"]
    assert (spec.signal, spec.settings) == (late, ToySettings)
    assert signals.get("late") is late


def test_given_a_signal_registered_when_a_pool_names_it_then_its_settings_are_validated(late: LateSignal) -> None:
    base = {"name": "p", "max_size": 5, "queues": [{"name": "q", "target_per_instance": 1}]}
    pool = PoolConfig.model_validate(base | {"signals": {"late": {"instances": 2}}})
    assert pool.signals["late"] == ToySettings(instances=2)
    with pytest.raises(ValueError, match=r"signals\.late: instances"):
        PoolConfig.model_validate(base | {"signals": {"late": {"instances": -1}}})


def test_given_an_empty_registry_when_the_built_in_signals_register_then_each_comes_with_its_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Registered at import, before any test runs: called again here, into an empty registry, so that
    # what it registers is checked (and a change to it is noticed).
    from queue_scaler.domain.signals import arrival_rate, backlog

    monkeypatch.setattr(signals, "_REGISTRY", {})
    signals._builtin()
    assert signals.registered() == {
        "backlog": signals.SignalSpec(backlog.BACKLOG, backlog.BacklogSettings),
        "arrival_rate": signals.SignalSpec(arrival_rate.ARRIVAL_RATE, arrival_rate.ArrivalRateSettings),
    }

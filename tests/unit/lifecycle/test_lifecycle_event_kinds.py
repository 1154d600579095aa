"""LIFECYCLE_EVENT_KINDS is the one list of the events LifecycleFunction takes: the parse, the dispatch and
the template's expected wiring all follow it, and a kind added to it (a toy one, registered here only)
parses, reaches its handler and is asked of the template, with nothing else changed."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal, get_type_hints

import pytest
from pydantic import Field, ValidationError

from devkit import lifecycle_wiring
from queue_scaler.lifecycle.services.lifecycle import ActionReport, LifecycleService
from queue_scaler.settings import LifecycleSettings
from queue_scaler.shared import events
from queue_scaler.shared.events import (
    LIFECYCLE_EVENT_KINDS,
    InstanceDetail,
    LifecycleEvent,
    LifecycleEventKind,
    LifecycleTrigger,
    ReconcileSchedule,
    lifecycle_kind,
)
from tests.fakes import FakeActionStore, FakeCommands, FakeHooks, TimingMetrics
from tests.functional.handlers import event

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "lifecycle"
T0 = 1_000_000.0


def service() -> LifecycleService:
    settings = LifecycleSettings(actions_table="t", group_names="video")  # type: ignore[arg-type]
    return LifecycleService(
        store=FakeActionStore(),
        hooks=FakeHooks(groups={}),
        commands=FakeCommands(),
        metrics=TimingMetrics(),
        policy=settings.policy(),
        groups=settings.group_names,
    )


@pytest.mark.parametrize("kind", LIFECYCLE_EVENT_KINDS, ids=lambda k: k.tag)
def test_given_each_kind_then_its_handler_takes_its_model(kind: LifecycleEventKind) -> None:
    handler = getattr(LifecycleService, kind.handler, None)
    assert handler is not None, f"LifecycleService has no {kind.handler} for the kind {kind.tag!r}"
    hints = get_type_hints(handler)
    [event_parameter, now] = list(inspect.signature(handler).parameters)[1:]
    assert (hints[event_parameter], hints[now], hints["return"]) == (kind.model, float, list[ActionReport])


def test_given_the_table_then_tags_and_detail_types_are_distinct() -> None:
    assert len({k.tag for k in LIFECYCLE_EVENT_KINDS}) == len(LIFECYCLE_EVENT_KINDS)
    detail_types = [d for k in LIFECYCLE_EVENT_KINDS for d in k.detail_types]
    assert len(set(detail_types)) == len(detail_types)


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.json") if p.name != "sqs-batch.json"))
def test_given_each_sample_event_then_it_parses_to_a_kind_of_the_table(sample: str) -> None:
    parsed = LifecycleTrigger.model_validate(event("lifecycle", sample)).root
    assert lifecycle_kind(parsed).model is type(parsed)


# --- A toy kind, registered in this test only ------------------------------------------------------


class ToyEvent(LifecycleEvent):
    """A made-up event: what a new kind brings (its model, with the pattern in its Literals)."""

    source: Literal["example.toy"]
    detail_type: Literal["Toy Happened"] = Field(alias="detail-type")
    detail: InstanceDetail


TOY = LifecycleEventKind("toy", ToyEvent, "on_toy", "ToyRule")
TOY_EVENT = {"source": "example.toy", "detail-type": "Toy Happened", "detail": {"instance-id": "i-toy"}}


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ToyEvent, float]]:
    """The toy kind's row in the table and its handler on the service; what the handler was given."""
    seen: list[tuple[ToyEvent, float]] = []

    def on_toy(self: LifecycleService, event: ToyEvent, now: float) -> list[ActionReport]:
        seen.append((event, now))
        return [ActionReport(event.detail.instance_id, "-", "toy", "a toy event")]

    monkeypatch.setattr(events, "LIFECYCLE_EVENT_KINDS", (*LIFECYCLE_EVENT_KINDS, TOY))
    monkeypatch.setattr(LifecycleService, "on_toy", on_toy, raising=False)
    return seen


def test_given_no_toy_kind_then_its_event_is_refused_naming_the_detail_type() -> None:
    with pytest.raises(ValidationError, match="unsupported detail-type for LifecycleFunction"):
        LifecycleTrigger.model_validate(TOY_EVENT)


def test_given_a_toy_kind_in_the_table_then_it_parses_and_reaches_its_handler(toy: list[Any]) -> None:
    parsed = LifecycleTrigger.model_validate(TOY_EVENT).root
    assert isinstance(parsed, ToyEvent) and parsed.detail.instance_id == "i-toy"
    [report] = service().handle(parsed, T0)
    assert report.as_dict() == {"instance_id": "i-toy", "action": "-", "step": "toy", "reason": "a toy event"}
    assert toy == [(parsed, T0)]
    # The table's own kinds still parse and dispatch beside it.
    schedule = LifecycleTrigger.model_validate(event("lifecycle", "reconcile-scheduled.json")).root
    assert isinstance(schedule, ReconcileSchedule) and service().handle(schedule, T0) == []


def test_given_a_toy_kind_in_the_table_then_the_template_is_asked_for_its_rule_source_and_alarm(toy: list[Any]) -> None:
    wiring = lifecycle_wiring.expected()
    assert wiring.queue_rules["ToyRule"] == lifecycle_wiring.RulePattern(
        frozenset({"example.toy"}), frozenset({"Toy Happened"})
    )
    assert "ToyRule" in wiring.policy_sources & wiring.alarmed_rules & wiring.gate
    # Without it in the table, none of it is asked.
    assert "ToyRule" not in lifecycle_wiring.expected(LIFECYCLE_EVENT_KINDS).rules


def test_given_two_kinds_sharing_a_detail_type_then_parsing_refuses_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    twin = LifecycleEventKind("twin", ToyEvent, "on_toy", "ToyRule")
    monkeypatch.setattr(events, "LIFECYCLE_EVENT_KINDS", (*LIFECYCLE_EVENT_KINDS, TOY, twin))
    with pytest.raises(ValueError, match="share a detail-type"):
        LifecycleTrigger.model_validate(TOY_EVENT)


def test_given_the_readme_then_its_events_table_has_a_row_for_each_detail_type() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    missing = [d for k in LIFECYCLE_EVENT_KINDS for d in k.detail_types if f"\n| `{d}`" not in readme]
    assert missing == [], f"README.md's table of LifecycleFunction's events lacks {missing}"

"""What each lifecycle step reports while an action is under way: the step and the reason of that
step (the action's final reason only once it completed), and for a duplicate of an action that has
already expired from the table, that nothing is left to do."""

from __future__ import annotations

import pytest

from tests.unit.lifecycle.test_lifecycle_service import INSTANCE, World, world  # noqa: F401 - the fixture


def test_given_a_drain_under_way_then_each_report_gives_that_steps_reason(world: World) -> None:  # noqa: F811
    [started] = world.terminate()
    assert (started["step"], started["reason"]) == ("run_command", "drain queue-worker: SIGTERM, jobs may run 60 s")
    [waiting] = world.terminate()  # the same event again: the recorded action advances
    assert (waiting["step"], waiting["reason"]) == ("wait", "drain running (InProgress)")


def test_given_a_duplicate_of_an_expired_action_then_it_reports_nothing_left_to_do(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world.terminate()
    monkeypatch.setattr(world.store, "get", lambda instance_id, key: None)  # expired from the table (TTL)
    assert world.terminate() == [
        {"instance_id": INSTANCE, "action": "terminate#tok-1", "step": "none", "reason": "duplicate of a past action"}
    ]
    assert world.metrics.counts[("LifecycleDuplicateEvents", None)] == 1

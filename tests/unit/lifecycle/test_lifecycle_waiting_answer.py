"""A health check's answer that arrives while the next check is not due yet is kept with the action:
the decision at the deadline still names it. The service over in-memory ports."""

from __future__ import annotations

from queue_scaler.lifecycle.services.lifecycle import LifecycleService
from queue_scaler.settings import LifecycleSettings
from queue_scaler.shared.events import LifecycleTrigger
from tests.fakes import FakeActionStore, FakeCommands, FakeHooks, TimingMetrics
from tests.functional.handlers import event

T0 = 1_000_000.0
INSTANCE = "i-0123456789abcdef0"


def test_given_an_unhealthy_answer_before_the_retry_is_due_then_it_is_saved_and_named_at_the_deadline() -> None:
    settings = LifecycleSettings(actions_table="t", group_names="video")  # type: ignore[arg-type]
    store, hooks, commands = FakeActionStore(), FakeHooks(groups={INSTANCE: "video"}), FakeCommands()
    service = LifecycleService(
        store=store,
        hooks=hooks,
        commands=commands,
        metrics=TimingMetrics(),
        policy=settings.policy(),
        groups=settings.group_names,
    )

    def handle(sample: str, now: float, **detail: str) -> list[dict[str, object]]:
        raw = event("lifecycle", sample)
        raw["detail"] = raw["detail"] | detail
        return [r.as_dict() for r in service.handle(LifecycleTrigger.model_validate(raw).root, now)]

    hooks.active.add("tok-L")
    handle("launch.json", T0, LifecycleActionToken="tok-L", AutoScalingGroupName="video", EC2InstanceId=INSTANCE)
    commands.finish("cmd-1", "Failed", "health=starting\nbooting")
    # 10 s after the check was sent: its answer is in, the next check waits for COMMAND_RETRY_SECONDS (30).
    [waiting] = handle(
        "command-invocation-status.json",
        T0 + 10,
        **{"command-id": "cmd-1", "instance-id": INSTANCE, "status": "Failed"},
    )
    assert waiting["step"] == "wait" and len(commands.sent) == 1
    [stored] = store.items.values()
    assert (stored.last_status, stored.last_output) == ("Failed", "health=starting\nbooting")

    # The next check is sent and never answers; at the deadline the kept answer is the last health known.
    handle("reconcile-scheduled.json", T0 + 60)
    assert len(commands.sent) == 2
    [done] = handle("reconcile-scheduled.json", T0 + 300)
    assert done["outcome"] == "failed"
    assert "last health: starting" in str(done["reason"])

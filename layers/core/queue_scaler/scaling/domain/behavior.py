"""The HPA `behavior` rules applied to an Auto Scaling group: stabilization windows and rate policies.

Semantics follow the Kubernetes HPA (pkg/controller/podautoscaler/horizontal.go:
stabilizeRecommendationWithBehaviors, calculateScaleUpLimitWithScalingRules,
calculateScaleDownLimitWithBehaviors), with the differences CONTRACTS.md section 1 states.
"""

from __future__ import annotations

import math

from queue_scaler.scaling.domain.models import History, LimitedBy, Recommendation, Step
from queue_scaler.scaling.domain.pool import Behavior, RatePolicy, ScalingRules
from queue_scaler.shared.domain.text import fmt

#: As in the decision: 4.000000000001 instances must not round up to 5.
_CEIL_EPSILON = 1e-9


def remembered(recommendation: Recommendation, held: float | None) -> int:
    """What a past recommendation stands for in the scale-down window: all of it, or with `held` (the
    instances the running messages hold now) its queue-driven part plus `held`, never more than it was."""
    (value,) = _remembered([recommendation], held)
    return value


def _remembered(recommendations: list[Recommendation], held: float | None) -> list[int]:
    """`remembered` of each recommendation, in one comprehension: a window holds dozens every tick."""
    if held is None:
        return [r.desired for r in recommendations]
    return [
        min(r.desired, max(0, math.ceil(max(0.0, r.desired - r.held) + held - _CEIL_EPSILON))) for r in recommendations
    ]


def stabilize(
    recommendation: int, current: int, now: float, history: History, behavior: Behavior, *, held: float | None = None
) -> Step:
    """Raise only to the lowest, lower only to the highest recommendation inside each window; with
    `held`, the scale-down window remembers only the queue-driven parts (see `remembered`)."""
    if recommendation > current:
        window = behavior.scale_up.stabilization_window_seconds
        since = now - window
        recent = [r.desired for r in history.recommendations if r.at > since]
        up = min([recommendation, *recent])
        value = up if up > current else current
        if window <= 0:
            return Step(value, None, None)
        limited = LimitedBy.SCALE_UP_STABILIZED if value < recommendation else None
        line = f"scale-up stabilization: lowest recommendation in the last {fmt(window)} s = {up}"
        return Step(value, limited, line + (f": hold at {value}" if limited else ""))
    if recommendation < current:
        window = behavior.scale_down.stabilization_window_seconds
        since = now - window
        recent = _remembered([r for r in history.recommendations if r.at > since], held)
        down = max([recommendation, *recent])
        value = down if down < current else current
        if window <= 0:
            return Step(value, None, None)
        limited = LimitedBy.SCALE_DOWN_STABILIZED if value > recommendation else None
        what = "recommendation" if held is None else f"queue-driven recommendation (+ {fmt(held)} held now)"
        line = f"scale-down stabilization: highest {what} in the last {fmt(window)} s = {down}"
        return Step(value, limited, line + (f": hold at {value}" if limited else ""))
    return Step(current, None, None)


def _period_start(current: int, now: float, history: History, period: float) -> tuple[int, str]:
    """The size at the start of a period: undo the changes made strictly inside it."""
    since = now - period
    changes = [e.change for e in history.scale_events if e.at > since]
    added = sum(c for c in changes if c > 0)
    removed = -sum(c for c in changes if c < 0)
    start = current - added + removed
    if not added and not removed:
        return start, f"start {start}"
    terms = [str(current)]
    if added:
        terms.append(f"- {added} added")
    if removed:
        terms.append(f"+ {removed} removed")
    return start, f"start {start} ({' '.join(terms)} in the last {fmt(period)} s)"


def _proposal(policy: RatePolicy, start: int, up: bool) -> tuple[int, str]:
    if policy.type == "Instances":
        value = start + policy.value if up else start - policy.value
        return value, f"Instances {'+' if up else '-'}{policy.value} = {value}"
    if up:
        # Rounded up, or a small fleet could never grow by a fraction of an instance (HPA does the same).
        value = -(-start * (100 + policy.value) // 100)
    else:
        value = start * max(0, 100 - policy.value) // 100
    return value, f"Percent {policy.value}% = {value}"


def _limit(rules: ScalingRules, current: int, now: float, history: History, up: bool) -> tuple[int, str]:
    """The most (Max) or least (Min) permissive of the policies' sizes, never past `current` backwards."""
    direction = "scale-up" if up else "scale-down"
    if rules.select_policy == "Disabled":
        return current, f"{direction} limit: Disabled: stay at {current}"
    starts = {p.period_seconds: _period_start(current, now, history, p.period_seconds) for p in rules.policies}
    shared_period = len(starts) == 1
    descriptions: list[str] = []
    proposals: list[int] = []
    for policy in rules.policies:
        start, start_text = starts[policy.period_seconds]
        value, text = _proposal(policy, start, up)
        proposals.append(value)
        descriptions.append(text if shared_period else f"{text} from {start_text}")
    permissive = max if up else min
    pick = permissive if rules.select_policy == "Max" else (min if up else max)
    limit = pick(proposals)
    # A limit never moves the size the other way.
    limit = max(limit, current) if up else min(limit, current)
    prefix = f"{direction} limit: "
    if shared_period:
        prefix += f"{next(iter(starts.values()))[1]}; "
    return limit, f"{prefix}{', '.join(descriptions)}; {rules.select_policy} = {limit}"


def rate_limit(target: int, current: int, now: float, history: History, behavior: Behavior) -> Step:
    """Bound the move from `current` toward `target` by the direction's rate policies."""
    if target == current:
        return Step(current, None, None)
    up = target > current
    rules: ScalingRules = behavior.scale_up if up else behavior.scale_down
    if not rules.policies and rules.select_policy != "Disabled":
        return Step(target, None, None)
    limit, line = _limit(rules, current, now, history, up)
    if up and current == 0 and limit < 1 and rules.select_policy != "Disabled":
        # KEDA's activation: a Percent policy alone would keep a pool at zero forever.
        limit = 1
        line += "; at least 1 from zero"
    value = min(target, limit) if up else max(target, limit)
    if value != target:
        limited = LimitedBy.SCALE_UP_LIMIT if up else LimitedBy.SCALE_DOWN_LIMIT
        return Step(value, limited, f"{line}: limited to {value}")
    return Step(value, None, line)

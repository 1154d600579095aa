"""What the template must hold for each lifecycle event kind, derived from
queue_scaler.shared.events.LIFECYCLE_EVENT_KINDS.

template.yaml stays hand-written: its rules carry filters (this stack's groups, the command statuses
worth an event), retry policies and the reasons for them, which a generated block would flatten.
Instead, each kind's part of the template is derived here from the table, and tests/contract checks
the deployed stack against it: a kind added to the table without its rule, its queue-policy source,
its term in the rule-failures alarm or its place in the pools' DependsOn fails there, naming what to
add and where.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from devkit.stackmodel import Stack
from queue_scaler.shared import events
from queue_scaler.shared.events import LifecycleEventKind

FUNCTION = "LifecycleFunction"
QUEUE = "LifecycleEventsQueue"
DEAD_LETTERS = "LifecycleEventsDeadLetters"
QUEUE_POLICY = "LifecycleEventsQueuePolicy"
#: The alarm whose metric math sums every rule's FailedInvocations.
RULE_FAILURES_ALARM = "-rule-delivery-failures"


@dataclass(frozen=True)
class RulePattern:
    """An EventBridge rule that sends one or more kinds to LifecycleEventsQueue."""

    sources: frozenset[str]
    detail_types: frozenset[str]


@dataclass(frozen=True)
class Wiring:
    """The template's side of the lifecycle event kinds."""

    #: Rules that deliver through LifecycleEventsQueue, with the pattern each must match exactly.
    queue_rules: dict[str, RulePattern]
    #: Rules that invoke LifecycleFunction themselves (the reconciler's schedule).
    direct_rules: frozenset[str]

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(self.queue_rules) | self.direct_rules

    @property
    def policy_sources(self) -> frozenset[str]:
        """The rules LifecycleEventsQueuePolicy lets send (aws:SourceArn), and no others."""
        return frozenset(self.queue_rules)

    @property
    def alarmed_rules(self) -> frozenset[str]:
        """The rules whose FailedInvocations the rule-failures alarm must sum."""
        return self.rules

    @property
    def gate(self) -> frozenset[str]:
        """What each pool stack depends on, so that no instance launches before its events can arrive."""
        return self.rules | {FUNCTION, QUEUE_POLICY}


def expected(kinds: Iterable[LifecycleEventKind] | None = None) -> Wiring:
    """The wiring the table (`kinds`, by default the product's) asks of the template."""
    kinds = tuple(events.LIFECYCLE_EVENT_KINDS if kinds is None else kinds)
    patterns: dict[str, tuple[set[str], set[str]]] = {}
    for kind in kinds:
        if kind.via_queue:
            sources, detail_types = patterns.setdefault(kind.rule, (set(), set()))
            sources.update(kind.sources)
            detail_types.update(kind.detail_types)
    direct = frozenset(kind.rule for kind in kinds if not kind.via_queue)
    if direct & set(patterns):
        raise ValueError(f"rules both through the queue and direct: {sorted(direct & set(patterns))}")
    return Wiring(
        queue_rules={rule: RulePattern(frozenset(s), frozenset(d)) for rule, (s, d) in patterns.items()},
        direct_rules=direct,
    )


def gaps(stack: Stack, kinds: Iterable[LifecycleEventKind] | None = None) -> list[str]:
    """What the deployed `stack` lacks (or has beyond) the wiring of `kinds`: each one what to change."""
    wiring = expected(kinds)
    resources = stack.resources()
    found: list[str] = []
    for rule, pattern in sorted(wiring.queue_rules.items()):
        want = f"source {sorted(pattern.sources)}, detail-type {sorted(pattern.detail_types)}"
        if rule not in resources or resources[rule].type != "AWS::Events::Rule":
            found.append(f"add an AWS::Events::Rule {rule} to template.yaml: EventPattern {want}, target {QUEUE}")
            continue
        props = resources[rule].properties
        got = props.get("EventPattern", {})
        if RulePattern(frozenset(got.get("source", [])), frozenset(got.get("detail-type", []))) != pattern:
            found.append(f"{rule}'s EventPattern must be {want} (it is {got.get('source')}, {got.get('detail-type')})")
        if [t.get("Arn") for t in props.get("Targets", [])] != [stack.get_att(QUEUE, "Arn")]:
            found.append(f"{rule} must target {QUEUE} (only)")
    for rule in sorted(wiring.direct_rules):
        if rule not in resources or resources[rule].type != "AWS::Events::Rule":
            found.append(f"add the EventBridge rule {rule} (an Events entry of {FUNCTION}) to template.yaml")
        elif [t.get("Arn") for t in resources[rule].properties.get("Targets", [])] != [stack.get_att(FUNCTION, "Arn")]:
            found.append(f"{rule} must invoke {FUNCTION} (only)")
    if found:
        return found  # the rest names the missing rules again
    found += _policy_gaps(stack, wiring)
    found += _alarm_gaps(stack, wiring)
    return found


def _policy_gaps(stack: Stack, wiring: Wiring) -> list[str]:
    [statement] = stack.resources()[QUEUE_POLICY].properties["PolicyDocument"]["Statement"]
    allowed = set(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
    wanted = {stack.get_att(rule, "Arn"): rule for rule in wiring.policy_sources}
    out = [
        f"add !GetAtt {rule}.Arn to {QUEUE_POLICY}'s aws:SourceArn"
        for arn, rule in wanted.items()
        if arn not in allowed
    ]
    out += [f"remove {arn} from {QUEUE_POLICY}'s aws:SourceArn: no kind uses it" for arn in allowed - set(wanted)]
    return sorted(out)


def _alarm_gaps(stack: Stack, wiring: Wiring) -> list[str]:
    [alarm] = [
        r.properties
        for r in stack.resources().values()
        if r.type == "AWS::CloudWatch::Alarm" and str(r.properties.get("AlarmName", "")).endswith(RULE_FAILURES_ALARM)
    ]
    metrics: list[dict[str, Any]] = alarm["Metrics"]
    [expression] = [m["Expression"] for m in metrics if m.get("ReturnData", True) and "Expression" in m]
    summed = set(re.findall(r"FILL\((\w+), 0\)", expression))
    ids = {
        str(d["Value"]): m["Id"]
        for m in metrics
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "FailedInvocations"
        for d in m["MetricStat"]["Metric"]["Dimensions"]
        if d["Name"] == "RuleName"
    }
    out = []
    for rule in sorted(wiring.alarmed_rules):
        metric_id = ids.get(stack.ref(rule))
        if metric_id is None:
            out.append(f"add a FailedInvocations metric (RuleName !Ref {rule}) to the alarm *{RULE_FAILURES_ALARM}")
        elif metric_id not in summed:
            out.append(f"add FILL({metric_id}, 0) ({rule}) to the *{RULE_FAILURES_ALARM} alarm's expression")
    return out

"""Records every AWS call each component makes on the local cloud, and checks each against its role.

A botocore event hook (`before-parameter-build`, on the session the components' clients come from)
turns each call into the (action, resource) pairs IAM authorizes (devkit/localcloud/policy.py) and
appends each new pair to `<dir>/<component>-<pid>.jsonl`. Nothing lists the calls to expect: a call
another change adds is recorded and checked the first time a run makes it.

In the daemon the hook records the functions (the component is the one `LocalIam.acting_as` names for
the current thread). A worker runs as `python -m devkit.localcloud.recording COMPONENT DIR MODULE`,
which registers the hook and then runs MODULE as `python -m MODULE` would.

`check` is the recorded-calls contract: per role, every operation called and the statement granting
it, and a violation for each call its role does not grant (conditions judged with the resource tags
recorded with the call, where moto cannot judge them).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from devkit.localcloud.policy import Access, evaluate, iam_prefix, requested_access

if TYPE_CHECKING:
    # Only a type here: iam.py imports moto, and every worker process starts through this module,
    # where seconds of moto import would delay each worker's boot on a busy machine.
    from devkit.localcloud.iam import ComponentRole

Context = Callable[[Access], Mapping[str, str]]


@dataclass
class CallRecorder:
    """Appends each new (component, action, resource) a client asks for to a JSON-lines file."""

    directory: Path
    component: Callable[[], str | None]
    context: Context | None = None
    #: Each table's partition key attribute (the leading keys item operations are judged on).
    partition_keys: Mapping[str, str] | None = None
    _seen: set[tuple[str, Access]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, session: boto3.session.Session) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        session.events.register("before-parameter-build", self._record)

    def _record(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        component = self.component()
        if component is None:
            return  # the local cloud's own code, not a component
        service = model.service_model
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        account = os.environ.get("QS_ACCOUNT_ID", "123456789012")
        prefix = iam_prefix(service.signing_name)
        for access in requested_access(
            prefix, model.name, params.get, region, account, partition_keys=self.partition_keys
        ):
            key = (component, access)
            with self._lock:
                if key in self._seen:
                    continue
                self._seen.add(key)
                line = {
                    "component": component,
                    "operation": f"{prefix}:{model.name}",
                    "action": access.action,
                    "resource": access.resource,
                    "leading_keys": None if access.leading_keys is None else list(access.leading_keys),
                    "attributes": None if access.attributes is None else list(access.attributes),
                    "select": access.select,
                    "return_values": access.return_values,
                    "context": dict(self.context(access)) if self.context else {},
                }
                with (self.directory / f"{component.replace(':', '-')}-{os.getpid()}.jsonl").open("a") as out:
                    out.write(json.dumps(line) + "\n")


def default_session() -> boto3.session.Session:
    """boto3's default session (what `boto3.client` uses), created if it does not exist yet."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    return boto3.DEFAULT_SESSION


def load(directory: Path) -> list[dict[str, Any]]:
    """Every call recorded under `directory`."""
    return [json.loads(line) for path in sorted(directory.glob("*.jsonl")) for line in path.read_text().splitlines()]


@dataclass(frozen=True)
class Checked:
    component: str
    action: str
    resource: str
    allowed: bool
    grant: str


def check(records: Iterable[Mapping[str, Any]], roles: Mapping[str, ComponentRole]) -> list[Checked]:
    """Each recorded call judged against the role of its component (a component with no role fails).
    One result per (component, action, resource): a denied call among its recordings (another item's
    leading key, say) is the one reported."""
    results: dict[tuple[str, str, str], Checked] = {}
    judged: set[tuple[str, Access]] = set()
    for record in records:
        leading, attributes = record.get("leading_keys"), record.get("attributes")
        access = Access(
            record["action"],
            record["resource"],
            None if leading is None else tuple(leading),
            None if attributes is None else tuple(attributes),
            record.get("select"),
            record.get("return_values"),
        )
        key = (record["component"], record["action"], record["resource"])
        if (record["component"], access) in judged or (key in results and not results[key].allowed):
            continue
        judged.add((record["component"], access))
        role = roles.get(record["component"])
        if role is None:
            results[key] = Checked(*key, False, "no role")
            continue
        decision = evaluate(role.documents(), access, record.get("context"))
        if key not in results or not decision.allowed:
            results[key] = Checked(*key, decision.allowed, decision.reason)
    return list(results.values())


def report(checked: Iterable[Checked], roles: Mapping[str, ComponentRole]) -> str:
    """Per role, every operation called and the statement that grants it (or why none does)."""
    lines = []
    by_component: dict[str, list[Checked]] = {}
    for item in checked:
        by_component.setdefault(item.component, []).append(item)
    for component in sorted(by_component):
        role = roles.get(component)
        lines.append(f"{component} ({role.logical_id if role else 'no role'}):")
        for item in sorted(by_component[component], key=lambda c: (c.action, c.resource)):
            verdict = f"granted by {item.grant}" if item.allowed else f"NOT GRANTED ({item.grant})"
            lines.append(f"  {item.action} on {item.resource}: {verdict}")
    return "\n".join(lines)


def unused_grants(checked: Iterable[Checked], roles: Mapping[str, ComponentRole]) -> list[str]:
    """Actions a role grants that its component never called in the run (wildcards left out): each
    must be removed, or carry a comment in the template saying why AWS needs it."""
    called = {(c.component, c.action.lower()) for c in checked}
    unused = []
    for component, role in sorted(roles.items()):
        for name, document in role.policies.items():
            statements = document.get("Statement", [])
            for statement in [statements] if isinstance(statements, dict) else statements:
                actions = statement.get("Action", [])
                for action in [actions] if isinstance(actions, str) else actions:
                    if "*" not in action and (component, action.lower()) not in called:
                        unused.append(f"{component} ({name}): {action}")
    return unused


def main(argv: list[str] | None = None) -> None:
    """`python -m devkit.localcloud.recording COMPONENT DIR MODULE`: run MODULE with its calls recorded."""
    component, directory, module = (argv or sys.argv[1:])[:3]
    from devkit.localcloud.stack import LocalSettings, partition_keys

    CallRecorder(Path(directory), lambda: component, partition_keys=partition_keys(LocalSettings())).attach(
        default_session()
    )
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

"""Reads template.yaml the way the local tools need it: functions, their environment, parameter defaults.

CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) load as their long forms, and `resolve`
turns the references a function's environment uses into the local cloud's names. A reference the
local cloud does not know is an error that names it, never a silent empty value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devkit.lambdas import ROOT

TEMPLATE = ROOT / "template.yaml"
_SHORT_FORMS = ("Ref", "Condition")
_FN = ("GetAtt", "Sub", "Join", "If", "Select", "Split", "Equals", "Not", "And", "Or", "FindInMap", "Base64", "GetAZs")


class _Loader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's tags."""


def _construct(tag: str) -> Any:
    long_form = tag if tag in _SHORT_FORMS else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {long_form: value}

    return construct


for _tag in (*_SHORT_FORMS, *_FN):
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


class UnresolvedReference(LookupError):
    """A function's environment refers to something the local cloud does not provide."""


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    return loads(path.read_text(encoding="utf-8"))


def loads(text: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    return data


def parameter_default(template: Mapping[str, Any], name: str) -> Any:
    return template["Parameters"][name]["Default"]


def tables(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every DynamoDB table of the template, by logical id, as CreateTable arguments (without a name).

    The key schema, attributes and billing mode come from the template itself, so the local cloud and
    the moto tests create exactly the tables CloudFormation creates (SAM's transform leaves
    AWS::DynamoDB::Table resources as they are written).
    """
    found: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        properties = resource["Properties"]
        found[logical_id] = {
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
    return found


@dataclass(frozen=True)
class PoolDefinition:
    """One pool the template's nested pool stacks define, with its parameters' default values."""

    logical_id: str  # e.g. VideoPool
    name: str  # PoolName, e.g. video
    queue_suffixes: tuple[str, ...]  # highest priority first, e.g. enterprise,...,free
    targets: tuple[float, ...]
    min_size: int

    @property
    def prefix(self) -> str:
        """Its root parameters' and conditions' prefix: the logical id without "Pool" (Video)."""
        return self.logical_id.removesuffix("Pool")


_POOL_PARAMETERS = ("PoolName", "QueueSuffixes", "TargetsPerInstance", "MinSize")


def pools(template: Mapping[str, Any]) -> list[PoolDefinition]:
    """The pools of the template (its `templates/pool.yaml` applications), parameters at their defaults."""
    defaults = {name: str(p["Default"]) for name, p in template.get("Parameters", {}).items() if "Default" in p}
    found = []
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::Serverless::Application" or properties.get("Location") != "templates/pool.yaml":
            continue
        given = properties["Parameters"]
        values = {name: resolve(given[name], defaults) for name in _POOL_PARAMETERS}
        found.append(
            PoolDefinition(
                logical_id=logical_id,
                name=values["PoolName"],
                queue_suffixes=tuple(values["QueueSuffixes"].split(",")),
                targets=tuple(float(t) for t in values["TargetsPerInstance"].split(",")),
                min_size=int(values["MinSize"]),
            )
        )
    return found


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    timeout: float
    environment: dict[str, Any]  # unresolved values
    memory_mb: int = 128  # Lambda's default when neither the function nor Globals sets MemorySize


def functions(template: Mapping[str, Any]) -> list[str]:
    return [name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]


def function(template: Mapping[str, Any], logical_id: str) -> FunctionSpec:
    """The handler and environment of one function, Globals applied as SAM applies them."""
    resource = template["Resources"].get(logical_id)
    if resource is None or resource["Type"] != "AWS::Serverless::Function":
        raise KeyError(
            f"{logical_id} is not a function of the template; its functions: {', '.join(functions(template))}"
        )
    globals_ = template.get("Globals", {}).get("Function", {})
    properties = resource["Properties"]
    module, _, handler = properties["Handler"].rpartition(".")
    environment = dict(globals_.get("Environment", {}).get("Variables", {}))
    environment.update(properties.get("Environment", {}).get("Variables", {}))
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=ROOT / properties["CodeUri"],
        module=module,
        handler=handler,
        timeout=float(properties.get("Timeout", globals_.get("Timeout", 3))),
        environment=environment,
        memory_mb=int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
    )


def resolve(value: Any, refs: Mapping[str, str]) -> str:
    """A plain string for an environment value: literals as they are, references from `refs`."""
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, arg),) = value.items()
        if kind == "Ref":
            return _lookup(str(arg), refs)
        if kind == "Fn::GetAtt":
            return _lookup(".".join(arg), refs)
        if kind == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}!]+)\}", lambda m: _lookup(m.group(1), refs), arg)
    raise UnresolvedReference(f"cannot resolve {value!r} locally")


def _lookup(name: str, refs: Mapping[str, str]) -> str:
    if name not in refs:
        raise UnresolvedReference(f"the local cloud provides no value for {name!r}")
    return refs[name]

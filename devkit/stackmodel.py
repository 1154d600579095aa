"""An offline model of the deployed stack tree: for contract tests, and for the local cloud's roles.

`make transform` writes the templates as CloudFormation JSON (the root one translated by SAM). This
module instantiates them the way CloudFormation would for one set of parameter values: conditions
decided, intrinsic functions resolved, nested stacks expanded with the parameters their parent
passes. Where only AWS knows a value (a queue URL, a topic ARN) it stands in a realistic
placeholder built from the resource's own properties, so that checks can compare ARNs and names
across stacks exactly as they would be compared after a deploy. The local cloud passes the names it
gave the resources whose names AWS would generate (`names`), so that the policies it enforces name
its own tables and topics.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRANSFORMED = ROOT / ".aws-sam" / "contract" / "templates.json"
ROOT_TEMPLATE = "template.yaml"
ACCOUNT = "123456789012"


class _NoValue:
    """AWS::NoValue: removes the list item or property that resolves to it."""


NO_VALUE = _NoValue()


def load_templates(path: Path = TRANSFORMED, *, check_sources: bool = True) -> dict[str, Any]:
    """The transformed templates, refusing a file older than its sources (unless `check_sources` is
    off: a deliberately broken copy differs from them by design)."""
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `make transform` (or `make test`)")
    data: dict[str, Any] = json.loads(path.read_text())
    for source, digest in data["sources"].items() if check_sources else ():
        current = hashlib.sha256((ROOT / source).read_bytes()).hexdigest()
        if current != digest:
            raise AssertionError(f"{source} changed since `make transform`: run it again")
    templates: dict[str, Any] = data["templates"]
    return templates


@dataclass
class Resource:
    stack: Stack
    logical_id: str
    type: str
    raw: dict[str, Any]

    @cached_property
    def properties(self) -> dict[str, Any]:
        resolved: dict[str, Any] = self.stack.resolve(self.raw.get("Properties", {}))
        return resolved

    @property
    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.raw.get("Metadata", {})
        return metadata

    @property
    def path(self) -> str:
        return f"{self.stack.path}/{self.logical_id}"


@dataclass
class Stack:
    """One stack of the tree: a template instantiated with resolved parameter values."""

    templates: dict[str, Any]
    template_key: str
    parameters: dict[str, Any]
    pseudo: dict[str, str]
    path: str
    parent: Stack | None = None
    #: Physical names of resources whose names AWS would generate, by logical id (root stack only).
    names: dict[str, str] = field(default_factory=dict)
    _children: dict[str, Stack] = field(default_factory=dict)
    _resources: dict[str, Resource] | None = None

    @property
    def template(self) -> dict[str, Any]:
        template: dict[str, Any] = self.templates[self.template_key]
        return template

    def resources(self) -> dict[str, Resource]:
        """Resources this stack creates (their Condition holds)."""
        if self._resources is not None:
            return self._resources
        found = {}
        for logical_id, raw in self.template.get("Resources", {}).items():
            if "Condition" in raw and not self.condition(raw["Condition"]):
                continue
            found[logical_id] = Resource(self, logical_id, raw["Type"], raw)
        self._resources = found
        return found

    def walk(self) -> list[Resource]:
        """Every resource of this stack and its nested stacks."""
        out = []
        for resource in self.resources().values():
            out.append(resource)
            if resource.type == "AWS::CloudFormation::Stack":
                out += self.child(resource.logical_id).walk()
        return out

    def stacks(self) -> list[Stack]:
        out = [self]
        for resource in self.resources().values():
            if resource.type == "AWS::CloudFormation::Stack":
                out += self.child(resource.logical_id).stacks()
        return out

    def child(self, logical_id: str) -> Stack:
        if logical_id not in self._children:
            raw = self.template["Resources"][logical_id]
            properties = self.resolve(raw["Properties"])
            key = (PurePosixPath(self.template_key).parent / properties["TemplateURL"]).as_posix()
            pseudo = dict(self.pseudo, **{"AWS::StackName": f"{self.pseudo['AWS::StackName']}-{logical_id}-X1"})
            self._children[logical_id] = instantiate(
                self.templates,
                key,
                properties.get("Parameters", {}),
                pseudo,
                f"{self.path}/{logical_id}",
                parent=self,
            )
        return self._children[logical_id]

    def outputs(self) -> dict[str, Any]:
        outputs = {}
        for name, output in self.template.get("Outputs", {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            outputs[name] = self.resolve(output["Value"])
        return outputs

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def ancestor_parameter(self, name: str) -> Any:
        """A parameter of this stack or the nearest enclosing stack that declares it."""
        stack: Stack | None = self
        while stack is not None:
            if name in stack.parameters:
                return stack.parameters[name]
            stack = stack.parent
        raise KeyError(name)

    # --- intrinsic functions -----------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self.function(key, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def function(self, name: str, arg: Any) -> Any:  # noqa: PLR0911 (one return per intrinsic function)
        if name == "Fn::If":
            condition, then, otherwise = arg
            return self.resolve(then if self.condition(condition) else otherwise)
        if name == "Fn::Sub":
            return self.sub(arg)
        if name == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(logical_id, attribute)
        args = self.resolve(arg)
        if name == "Fn::Join":
            separator, items = args
            return separator.join(str(i) for i in items)
        if name == "Fn::Split":
            separator, text = args
            return text.split(separator)
        if name == "Fn::Select":
            index, items = args
            return items[int(index)]
        if name == "Fn::Equals":
            return str(args[0]) == str(args[1])
        if name == "Fn::Not":
            return not args[0]
        if name == "Fn::And":
            return all(args)
        if name == "Fn::Or":
            return any(args)
        if name == "Fn::FindInMap":
            mapping, first, second = args
            return self.template["Mappings"][mapping][str(first)][second]
        if name == "Fn::Base64":
            # Kept readable: the tests compare the user data's text.
            return args
        raise NotImplementedError(f"{self.path}: {name} is not modelled; add it to devkit/stackmodel.py")

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.resource_ref(self.resources()[name])

    def resource_ref(self, resource: Resource) -> str:
        """What Ref returns for a resource, from its own properties where AWS derives it from them."""
        props = resource.properties
        region, kind = self.pseudo["AWS::Region"], resource.type
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{props['QueueName']}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{region}:{ACCOUNT}:{self.generated_name(resource)}"
        named = {
            "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
            "AWS::CloudWatch::Alarm": "AlarmName",
            "AWS::SSM::Parameter": "Name",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::CloudWatch::Dashboard": "DashboardName",
        }
        if kind in named and named[kind] in props:
            return str(props[named[kind]])
        return self.generated_name(resource)

    def generated_name(self, resource: Resource) -> str:
        if resource.stack.parent is None and resource.logical_id in self.names:
            return self.names[resource.logical_id]
        return f"{self.pseudo['AWS::StackName']}-{resource.logical_id}-GEN"

    def get_att(self, logical_id: str, attribute: str) -> Any:  # noqa: PLR0911 - one return per resource kind
        resource = self.resources()[logical_id]
        if resource.type == "AWS::CloudFormation::Stack":
            assert attribute.startswith("Outputs."), attribute
            return self.child(logical_id).outputs()[attribute.removeprefix("Outputs.")]
        region = self.pseudo["AWS::Region"]
        if resource.type == "AWS::SQS::Queue":
            name = resource.properties["QueueName"]
            return {"Arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{name}", "QueueName": name}[attribute]
        # The ARN formats AWS documents for the resources policies name by Fn::GetAtt.
        if attribute == "Arn" and resource.type == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{self.resource_ref(resource)}"
        if attribute == "Arn" and resource.type == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{self.resource_ref(resource)}:*"
        if attribute == "Arn" and resource.type == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{self.resource_ref(resource)}"
        if attribute == "Arn":
            service = resource.type.split("::")[1].lower()
            return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource.logical_id}/{self.resource_ref(resource)}"
        return f"{self.resource_ref(resource)}.{attribute}"


def _parameter_value(declaration: dict[str, Any], value: Any) -> Any:
    kind = declaration["Type"]
    if kind.startswith("AWS::SSM::Parameter::Value<"):
        # CloudFormation reads the parameter's value from SSM at deploy time.
        return "ami-0123456789abcdef0"
    if kind.startswith("List<") or kind == "CommaDelimitedList":
        return value if isinstance(value, list) else str(value).split(",")
    return str(value)


def instantiate(
    templates: dict[str, Any],
    key: str,
    given: dict[str, Any],
    pseudo: dict[str, str],
    path: str,
    *,
    parent: Stack | None = None,
) -> Stack:
    """A stack of template `key` with parameter values `given` (defaults for the others)."""
    declared = templates[key].get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(f"{path}: parameters {unknown} are not declared by {key}")
    values = {}
    for name, declaration in declared.items():
        if name in given:
            value = given[name]
        elif "Default" in declaration:
            value = declaration["Default"]
        else:
            raise ValueError(f"{path}: parameter {name} has no value and no default")
        allowed = declaration.get("AllowedValues")
        if allowed is not None and str(value) not in [str(a) for a in allowed]:
            raise ValueError(f"{path}: {name}={value} is not one of {allowed}")
        values[name] = _parameter_value(declaration, value)
    return Stack(templates, key, values, pseudo, path, parent)


def root_stack(
    templates: dict[str, Any],
    parameters: dict[str, Any],
    stack_name: str,
    region: str,
    names: dict[str, str] | None = None,
) -> Stack:
    """The stack tree of `stack_name`; `names` gives resources the names AWS would generate."""
    pseudo = {
        "AWS::StackName": stack_name,
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    stack = instantiate(templates, ROOT_TEMPLATE, parameters, pseudo, stack_name)
    stack.names = dict(names or {})
    return stack

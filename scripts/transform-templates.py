"""Translate the stack's templates to plain CloudFormation JSON, for tests/contract.

Runs in .venv-tools (`make transform`): aws-sam-translator pins pydantic~=2.13, below the project's
pydantic, so it cannot live in .venv. Starting at template.yaml, it follows every nested stack whose
template is a local file, translates each template that declares the SAM transform (exactly what
CloudFormation would run) and parses the others, and writes them all, with the SHA-256 of each
source, to OUT/templates.json. The tests refuse a file whose hashes no longer match the sources.
No AWS call is made: the policies the templates use are inline or named by ARN.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent


class _NoManagedPolicies:
    """Policy loader for the translator: the templates name managed policies by ARN, never by name."""

    def load(self) -> dict[str, str]:
        return {}


# Artifact properties that `sam package` rewrites from local paths to S3 URIs before CloudFormation
# sees them; the translator accepts only S3 URIs, so they get placeholders as in `sam validate`.
_ARTIFACTS = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def _with_placeholder_artifacts(template: dict[str, Any]) -> dict[str, Any]:
    for resource in template.get("Resources", {}).values():
        prop = _ARTIFACTS.get(resource.get("Type", ""))
        local = resource.get("Properties", {}).get(prop) if prop else None
        if isinstance(local, str) and not local.startswith("s3://"):
            resource["Properties"][prop] = f"s3://local-artifacts/{local.strip('/')}"
    return template


def _nested_locations(template: dict[str, Any]) -> list[str]:
    locations = []
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        location = properties.get("TemplateURL") or properties.get("Location")
        if isinstance(location, str) and "://" not in location:
            locations.append(location)
    return locations


def collect(entry: Path) -> dict[str, Any]:
    """The templates reachable from `entry`, keyed by path relative to the repository, and their hashes."""
    templates: dict[str, Any] = {}
    sources: dict[str, str] = {}
    pending = [entry.resolve()]
    while pending:
        path = pending.pop()
        key = path.relative_to(ROOT).as_posix()
        if key in templates:
            continue
        text = path.read_text()
        sources[key] = hashlib.sha256(text.encode()).hexdigest()
        template = yaml_parse(text)
        if "Transform" in template:
            template = transform(_with_placeholder_artifacts(template), {}, _NoManagedPolicies())
        templates[key] = template
        pending += [(path.parent / location).resolve() for location in _nested_locations(template)]
    return {"sources": sources, "templates": templates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="template.yaml", help="the root template")
    parser.add_argument("--out", default=".aws-sam/contract", help="output folder")
    args = parser.parse_args()
    result = collect(ROOT / args.template)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "templates.json").write_text(json.dumps(result, indent=1, sort_keys=True, default=str))
    print(f"transform: {', '.join(sorted(result['templates']))} -> {args.out}/templates.json")


if __name__ == "__main__":
    main()

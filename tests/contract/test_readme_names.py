"""The README's AWS examples name what the stack creates: each option's value is the dev stack's output."""

from __future__ import annotations

import re
from typing import Any

from devkit.stackmodel import ROOT, root_stack

from .invariants import environments, parameter_overrides

#: An option of the README's AWS examples, and the stack output that gives its value.
OUTPUT_OF = {
    "--parameter": "PoolConfigParameterName",
    "--history-table": "HistoryTableName",
    "--actions-table": "LifecycleActionsTableName",
    "--ledger-table": "LedgerTableName",
}
#: What the stack model puts where CloudFormation generates a name's suffix (devkit/stackmodel.py).
GENERATED = "-GEN"


def readme_examples() -> list[tuple[str, str]]:
    """(option, value) of every named-resource option in the README's code blocks, `--local` lines aside."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    commands = re.split(r"(?<!\\)\n", "\n".join(blocks))
    found = []
    for command in commands:
        if "--local" in command:
            continue
        options = "|".join(map(re.escape, OUTPUT_OF))
        found += re.findall(rf"({options})\s+([^\s\\]+)", command)
    return found


def test_the_readmes_aws_examples_name_the_dev_stacks_resources(
    templates: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    deploy = environments(samconfig)["dev"]
    outputs = root_stack(templates, parameter_overrides(deploy), deploy["stack_name"], deploy["region"]).outputs()
    examples = readme_examples()
    assert {option for option, _ in examples} >= {"--parameter", "--history-table", "--actions-table"}
    for option, value in examples:
        expected = str(outputs[OUTPUT_OF[option]])
        if expected.endswith(GENERATED):
            # CloudFormation's suffix is the stack's own: the example may show any, after the same prefix.
            assert re.fullmatch(re.escape(expected.removesuffix(GENERATED)) + r"-[A-Za-z0-9]+", value), (option, value)
        else:
            assert value == expected, (option, value)

"""The templates' generated parts: written from the product's own definitions, never by hand.

- templates/pool.yaml's `Config` output states the recommended policy
  (`queue_scaler.scaling.config.RECOMMENDED`) field by field in the JSON the stack writes to the scaler's
  configuration parameter; this module writes those fields from RECOMMENDED.
- template.yaml's lists of pools (the alarm names, queue ARNs and group names other resources name,
  the scaler's and MetricsFunction's configuration documents, the lifecycle function's groups and
  drain windows): the one list of pools is the template's own pool applications (the
  `templates/pool.yaml` resources, in their order). Each generated list follows a marker comment:
    `# each pool: LINE` - the lines below it, one per pool;
    `# all pools: BEFORE<<SEGMENT|SEPARATOR>>AFTER` - the line below it, SEGMENT once per pool.
  In LINE and SEGMENT `{Pool}` is the pool application's logical id (VideoPool), `{Name}` that id
  without "Pool" (Video: its parameters' and conditions' prefix), `{name}` its PoolName (video).
  Adding a pool is its parameters, its condition, its application block, and `make generate`.
  Measured on a scratch branch (a `gpu` pool copied from `ai`; `git diff --stat`): template.yaml
  (+124 lines: 15 parameters, 1 condition, the 40-line block, 12 generated lines), samconfig.toml (its
  image URI per environment) and tests/contract/test_local_derivation.py (its REQUIRED image URI).
  What that change then meets: the pools' configuration for MetricsFunction outgrows a Standard SSM
  parameter (4 KB) at a fourth pool of five queues; contract tests that pin three pools (counts,
  names, the cost model of docs/cost.md) fail until updated; the dashboard's widget lines (inside a
  block scalar, where no marker can go) are written by hand.

`python -m devkit.templategen` (`make generate`) rewrites what differs and names the files it changed;
tests/unit/tooling/test_templategen.py fails while a template differs from its generated form.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from devkit import template
from queue_scaler.scaling.config import RECOMMENDED

ROOT = Path(__file__).resolve().parents[1]
POOL_TEMPLATE = ROOT / "templates" / "pool.yaml"
ROOT_TEMPLATE = ROOT / "template.yaml"

# The recommended fields sit between the pool's facts (the last one is slots_per_instance) and its
# queues, inside the one-line Fn::Sub of the `Config` output.
_RECOMMENDED_SPAN = re.compile(
    r'(?P<before>"slots_per_instance":\$\{WorkerSlots\},)(?P<policy>.*?)(?P<after>,"queues":\[)'
)


class GenerationFailed(RuntimeError):
    """A template no longer has the place its generated part goes."""


def recommended_fields() -> str:
    """RECOMMENDED as the members of a JSON object (no braces), as the `Config` output writes them.
    Fn::Sub would read `${` as a reference: RECOMMENDED has none (checked)."""
    text = json.dumps(RECOMMENDED, separators=(",", ":"))[1:-1]
    if "${" in text:
        raise GenerationFailed("RECOMMENDED contains '${', which Fn::Sub would take for a reference")
    return text


def pool_template(text: str) -> str:
    """templates/pool.yaml's text with its recommended fields written from RECOMMENDED."""
    found = _RECOMMENDED_SPAN.findall(text)
    if len(found) != 1:
        raise GenerationFailed(
            f"{POOL_TEMPLATE.name}: expected one `Config` output stating the policy between "
            f'"slots_per_instance" and "queues", found {len(found)}'
        )
    return _RECOMMENDED_SPAN.sub(lambda m: m["before"] + recommended_fields() + m["after"], text)


_EACH = re.compile(r"^(?P<indent> *)# each pool: (?P<line>.+)$")
_ALL = re.compile(r"^(?P<indent> *)# all pools: (?P<before>.*)<<(?P<segment>.+)\|(?P<separator>.*)>>(?P<after>.*)$")


def _fill(pattern: str, pool: template.PoolDefinition) -> str:
    return pattern.replace("{Pool}", pool.logical_id).replace("{Name}", pool.prefix).replace("{name}", pool.name)


def _nested(body: str, patterns: set[str]) -> bool:
    """Whether a list's first line opens a nested sequence ("- - item") of pattern lines."""
    return body not in patterns and body.startswith("- ") and body[2:] in patterns


def _run_length(lines: list[str], start: int, patterns: set[str]) -> int:
    """How many lines from `start` a marker's pattern made (for any pool)."""
    count = 0
    for line in lines[start:]:
        body = line.strip()
        if not (body in patterns or (count == 0 and _nested(body, patterns))):
            break
        count += 1
    return count


def root_template(text: str, pools: list[template.PoolDefinition] | None = None) -> str:
    """template.yaml's text with every list after a pool marker written for `pools` (by default the
    template's own pool applications)."""
    current = template.pools(template.loads(text))
    chosen = current if pools is None else pools
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        if each := _EACH.match(line):
            every = [_fill(each["line"], pool) for pool in chosen]
            known = {_fill(each["line"], pool) for pool in current} | set(every)
            run = _run_length(lines, index, known)
            if run == 0:
                raise GenerationFailed(f"template.yaml line {index}: no pool list follows {line.strip()!r}")
            first = lines[index]
            indent = first[: len(first) - len(first.lstrip())]
            if _nested(first.strip(), known):
                out.append(f"{indent}- {every[0]}")
                out.extend(f"{indent}  {entry}" for entry in every[1:])
            else:
                out.extend(f"{indent}{entry}" for entry in every)
            index += run
        elif joined := _ALL.match(line):
            segments = joined["separator"].join(_fill(joined["segment"], pool) for pool in chosen)
            out.append(joined["indent"] + joined["before"] + segments + joined["after"])
            index += 1
    return "\n".join(out)


#: Each generated file and how its text is made from the current one.
GENERATED = {POOL_TEMPLATE: pool_template, ROOT_TEMPLATE: root_template}


def main() -> int:
    changed = []
    for path, generate in GENERATED.items():
        current = path.read_text(encoding="utf-8")
        wanted = generate(current)
        if wanted != current:
            path.write_text(wanted, encoding="utf-8")
            changed.append(path.relative_to(ROOT))
    print("generated: " + (", ".join(map(str, changed)) if changed else "nothing changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

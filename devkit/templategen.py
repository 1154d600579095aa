"""The templates' generated parts: written from the product's own definitions, never by hand.

- templates/pool.yaml's `Config` output states the recommended policy
  (`queue_scaler.config.RECOMMENDED`) field by field in the JSON the stack writes to the scaler's
  configuration parameter; this module writes those fields from RECOMMENDED.

`python -m devkit.templategen` (`make generate`) rewrites what differs and names the files it changed;
tests/unit/test_templategen.py fails while a template differs from its generated form.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from queue_scaler.config import RECOMMENDED

ROOT = Path(__file__).resolve().parents[1]
POOL_TEMPLATE = ROOT / "templates" / "pool.yaml"

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


#: Each generated file and how its text is made from the current one.
GENERATED = {POOL_TEMPLATE: pool_template}


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

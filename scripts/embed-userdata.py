"""Embed workers/userdata.sh into the launch template of templates/pool.yaml.

The launch template's UserData is Fn::Base64 of Fn::Sub: a preamble exporting the script's settings
(QS_POOL, QS_IMAGE, QS_ENV_PARAMETER_PATH, QS_DRAIN_SECONDS, QS_LOG_GROUP, QS_GROUP_NAME, AWS_REGION) from the
pool's parameters, then the script itself between two marker lines. Inside Fn::Sub every literal
"${" must be written "${!", so the script is copied with that escape; nothing else changes.

    scripts/embed-userdata.py           rewrite the block in templates/pool.yaml
    scripts/embed-userdata.py --check   exit 1 when the block differs from the script
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "workers" / "userdata.sh"
TEMPLATE = ROOT / "templates" / "pool.yaml"
BEGIN = "# >>> workers/userdata.sh"
END = "# <<< workers/userdata.sh"
# EC2 refuses user data over 16 KB (before base64); the preamble takes a few hundred bytes.
MAX_SCRIPT_BYTES = 15_000


def escape(script: str) -> str:
    """The script as Fn::Sub must see it to output it unchanged."""
    return script.replace("${", "${!")


def unescape(block: str) -> str:
    return block.replace("${!", "${")


def _block_bounds(lines: list[str]) -> tuple[int, int, str]:
    """Indexes of the marker lines and their indentation."""
    begins = [i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ValueError(f"expected one '{BEGIN}' line followed by one '{END}' line")
    begin = lines[begins[0]]
    return begins[0], ends[0], begin[: len(begin) - len(begin.lstrip())]


def extract(template: str) -> str:
    """The script embedded in the template, unescaped."""
    lines = template.splitlines()
    begin, end, indent = _block_bounds(lines)
    body = [line.removeprefix(indent) for line in lines[begin + 1 : end]]
    return unescape("\n".join(body) + "\n")


def embed(template: str, script: str) -> str:
    """The template with its embedded block replaced by `script`."""
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        raise ValueError(f"the script has {len(script.encode())} bytes; user data allows about {MAX_SCRIPT_BYTES}")
    lines = template.splitlines()
    begin, end, indent = _block_bounds(lines)
    # Blank lines stay empty: YAML block scalars keep them, and no line gets trailing spaces.
    body = [indent + line if line else "" for line in escape(script).splitlines()]
    return "\n".join([*lines[: begin + 1], *body, *lines[end:]]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the template is in sync")
    args = parser.parse_args()
    if not SCRIPT.exists():
        print(f"embed-userdata: {SCRIPT.relative_to(ROOT)} does not exist", file=sys.stderr)
        return 2
    template, script = TEMPLATE.read_text(), SCRIPT.read_text()
    updated = embed(template, script)
    if args.check:
        if updated != template:
            print(
                "embed-userdata: templates/pool.yaml is out of date: run scripts/embed-userdata.py",
                file=sys.stderr,
            )
            return 1
        return 0
    TEMPLATE.write_text(updated)
    print(f"embed-userdata: {SCRIPT.relative_to(ROOT)} -> {TEMPLATE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

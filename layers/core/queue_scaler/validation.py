"""Readable validation errors: one line per problem, each naming the field by its dotted path."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError) -> str:
    """e.g. `  pools.0.queues.1.target_per_instance: Input should be greater than 0`."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(root)"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)

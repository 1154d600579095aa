"""Readable validation errors: one line per problem, each naming the field by its dotted path."""

from __future__ import annotations

from pydantic import ValidationError

#: pydantic error types whose message names a Python class ("... instance of QueueConfig"): said in
#: the input's own terms instead, since the reader wrote JSON or YAML, not Python.
_OBJECT_EXPECTED = {"model_type", "model_attributes_type", "dataclass_type", "dict_type"}


def describe_validation_error(error: ValidationError) -> str:
    """e.g. `  pools.0.queues.1.target_per_instance: Input should be greater than 0`."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(root)"
        message = problem["msg"]
        if problem["type"] in _OBJECT_EXPECTED:
            message = "Input should be an object (a mapping of fields)"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)

"""Domain errors that adapters raise instead of botocore's ClientError.

A failed read is never turned into a zero: a zero backlog would scale a busy fleet in.
"""

from __future__ import annotations


class AwsCallError(Exception):
    """An AWS call failed; `operation` and `code` say which and how."""

    retryable = False

    def __init__(self, operation: str, code: str, message: str = "") -> None:
        super().__init__(f"{operation}: {code}" + (f": {message}" if message else ""))
        self.operation = operation
        self.code = code


class Throttled(AwsCallError):
    """The service rate-limited us; the next tick tries again."""

    retryable = True


class NotFound(AwsCallError):
    """The queue, group, table or parameter does not exist (misconfiguration)."""


class Forbidden(AwsCallError):
    """IAM or a resource policy denied the call (misconfiguration)."""


class Unavailable(AwsCallError):
    """A timeout, a connection failure or a 5xx: transient."""

    retryable = True


class ConcurrentUpdate(Exception):
    """Another tick changed the pool's history first; this tick must not act on stale history."""

    def __init__(self, pool: str) -> None:
        super().__init__(f"history of pool {pool!r} changed under this tick")
        self.pool = pool


class ConfigError(Exception):
    """The pool configuration is missing or does not validate; the message names the field."""


class ActionConflict(Exception):
    """Another invocation changed a lifecycle action first; the step it took stands and this one stands down."""

    def __init__(self, instance_id: str, key: str) -> None:
        super().__init__(f"lifecycle action {key} of {instance_id} changed under this invocation")
        self.instance_id = instance_id
        self.key = key

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


class OutcomeUnknown(Unavailable):
    """The request may have reached the service and taken effect, but its answer was lost: a timeout
    reading the response, a connection dropped after the request left, a 5xx, or a failure after
    botocore's retries (an earlier attempt may have been the one that worked). A write that fails so
    may have been applied: its caller must not undo what depends on it (adapters.aws_errors).
    """


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


class NotificationPending(Exception):
    """Another delivery of the same job holds a live claim on the user's notice.

    Retryable: the record goes back to its queue and, by the time it is delivered again, the notice
    was either sent (nothing left to do) or its holder died and the claim's lease ran out (take over).
    """

    retryable = True

    def __init__(self, job_id: str) -> None:
        super().__init__(f"the notice of job {job_id!r} is being sent by another delivery")
        self.job_id = job_id


class InsufficientCredits(Exception):
    """A reservation asked for more credits than the user's balance holds; nothing was reserved."""


class DuplicateReservation(Exception):
    """The job already has a reservation (a producer retried its submission); nothing was reserved again."""


class JobRunning(Exception):
    """A dead letter's job is running under a live lease (another copy of its message is being worked):
    it is neither refunded nor sent back now.

    Retryable: the record goes back to its dead-letter queue and, by its next delivery, the lease has
    ended in a completion (nothing to refund) or expired (the job is settled then).
    """

    retryable = True

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} is running under a live lease; its dead letter waits")
        self.job_id = job_id


class ReferenceTaken(Exception):
    """A deposit's purchase reference was already used by another user: one purchase credits one account."""

    def __init__(self, reference: str, owner: str) -> None:
        super().__init__(f"reference {reference!r} was already deposited for user {owner!r}; nothing was credited")
        self.reference = reference
        self.owner = owner


class BalanceCapExceeded(Exception):
    """A deposit would take a balance above the ledger's balance cap: refused atomically, nothing credited."""

    def __init__(self, user_id: str, credits: int, cap: int, balance: int | None = None) -> None:
        if balance is None:
            what, room = f"is above the balance cap of {cap}", cap
        else:
            what, room = (
                f"would take the balance of user {user_id!r} ({balance}) above the balance cap of {cap}",
                cap - balance,
            )
        super().__init__(
            f"credits: {credits} {what} (BALANCE_CAP): deposit at most {max(room, 0)}; nothing was credited"
        )
        self.user_id = user_id
        self.credits = credits
        self.cap = cap
        self.balance = balance

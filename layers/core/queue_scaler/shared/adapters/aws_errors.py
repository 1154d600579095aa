"""Translate botocore failures into the domain's errors, keeping the operation and the error code."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError

from queue_scaler.shared.errors import AwsCallError, Forbidden, NotFound, OutcomeUnknown, Throttled, Unavailable

_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
}
_NOT_FOUND = {
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFoundException",
    "ParameterNotFound",
}
_FORBIDDEN = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "KMS.AccessDeniedException"}
_BY_CODE: tuple[tuple[set[str], type[AwsCallError]], ...] = (
    (_THROTTLED, Throttled),
    (_NOT_FOUND, NotFound),
    (_FORBIDDEN, Forbidden),
)
#: Server faults named by code, for an answer that carries no HTTP status.
_SERVER_FAULTS = {"InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable"}


def outcome_unknown(error: Exception) -> bool:
    """May the failed request have reached the service and taken effect?

    Yes for a 5xx (the service may have applied the request before failing), a ReadTimeoutError or a
    ConnectionClosedError (any HTTPClientError: the request left, its answer was lost), and for any
    answer that came after botocore retried (RetryAttempts > 0): only retryable failures are retried,
    and an earlier attempt may have been the one that worked. No for a 4xx answered at the first
    attempt (throttled, denied, a queue that does not exist, a message SQS refuses: the service
    rejected it), for an EndpointConnectionError, ConnectTimeoutError, SSLError or
    ProxyConnectionError (no connection was made: the request never left), and for failures before
    sending (no credentials, invalid parameters). botocore does not say how many attempts preceded an
    exception, so a connection failure after retries counts as definite; the worker's refusal of an
    unreserved job covers that case (a copy that reached SQS anyway is deleted, never run unpaid).
    """
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        metadata = error.response.get("ResponseMetadata", {})
        status = int(metadata.get("HTTPStatusCode", 0))
        return status >= 500 or code in _SERVER_FAULTS or int(metadata.get("RetryAttempts", 0)) > 0
    return isinstance(error, HTTPClientError)


def translate(operation: str, error: Exception, *, reads_only: bool = False) -> AwsCallError:
    """The domain error for a failed call; unknown client errors keep their code as AwsCallError.

    A failure whose outcome is unknown (`outcome_unknown`) is OutcomeUnknown, unless the call only
    reads (`reads_only`): a read changes nothing, whatever became of it.
    """
    kind: type[AwsCallError]
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        message = str(error.response.get("Error", {}).get("Message", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        kind = next((k for codes, k in _BY_CODE if code in codes), AwsCallError)
        if kind is AwsCallError and (status >= 500 or code in _SERVER_FAULTS):
            kind = Unavailable
    elif isinstance(error, BotoCoreError):
        code, message, kind = type(error).__name__, str(error), Unavailable
    else:
        raise error
    if not reads_only and outcome_unknown(error):
        kind = OutcomeUnknown
    return kind(operation, code, message)

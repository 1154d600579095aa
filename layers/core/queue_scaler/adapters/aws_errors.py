"""Translate botocore failures into the domain's errors, keeping the operation and the error code."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from queue_scaler.errors import AwsCallError, Forbidden, NotFound, Throttled, Unavailable

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


def translate(operation: str, error: Exception) -> AwsCallError:
    """The domain error for a failed call; unknown client errors keep their code as AwsCallError."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        message = str(error.response.get("Error", {}).get("Message", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in _THROTTLED:
            return Throttled(operation, code, message)
        if code in _NOT_FOUND:
            return NotFound(operation, code, message)
        if code in _FORBIDDEN:
            return Forbidden(operation, code, message)
        if status >= 500:
            return Unavailable(operation, code, message)
        return AwsCallError(operation, code, message)
    if isinstance(error, BotoCoreError):
        return Unavailable(operation, type(error).__name__, str(error))
    raise error

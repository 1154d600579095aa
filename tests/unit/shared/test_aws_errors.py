"""The rule that tells a send that may have reached SQS from one that certainly did not (aws_errors)."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ProxyConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)

from queue_scaler.shared.adapters.aws_errors import outcome_unknown, translate
from queue_scaler.shared.errors import AwsCallError, Forbidden, NotFound, OutcomeUnknown, Throttled, Unavailable

URL = "https://sqs.us-east-1.amazonaws.com/"


def answer(code: str, status: int, retries: int = 0) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retries},
        },
        "SendMessage",
    )


# (failure, may it have reached the service, what translate makes of it)
CASES: list[tuple[str, Exception, bool, type[AwsCallError]]] = [
    ("a read timeout: the request left", ReadTimeoutError(endpoint_url=URL), True, OutcomeUnknown),
    ("a connection closed after sending", ConnectionClosedError(endpoint_url=URL), True, OutcomeUnknown),
    ("the answer's stream broke", ResponseStreamingError(error="reset"), True, OutcomeUnknown),
    ("a 500 InternalError", answer("InternalError", 500), True, OutcomeUnknown),
    ("a 503 ServiceUnavailable", answer("ServiceUnavailable", 503), True, OutcomeUnknown),
    ("a server fault without a status", answer("InternalError", 0), True, OutcomeUnknown),
    (
        "throttled after retries: an earlier attempt may have worked",
        answer("RequestThrottled", 400, 2),
        True,
        OutcomeUnknown,
    ),
    ("throttled at the first attempt", answer("RequestThrottled", 400), False, Throttled),
    ("access denied", answer("AccessDenied", 403), False, Forbidden),
    ("a queue that does not exist", answer("AWS.SimpleQueueService.NonExistentQueue", 400), False, NotFound),
    ("a message SQS refuses", answer("InvalidMessageContents", 400), False, AwsCallError),
    ("no connection made", EndpointConnectionError(endpoint_url=URL), False, Unavailable),
    ("a connect timeout: nothing left", ConnectTimeoutError(endpoint_url=URL), False, Unavailable),
    ("a TLS handshake failure", SSLError(endpoint_url=URL, error="bad cert"), False, Unavailable),
    ("a proxy refused the connection", ProxyConnectionError(proxy_url="http://p", error="refused"), False, Unavailable),
    ("no credentials: nothing signed or sent", NoCredentialsError(), False, Unavailable),
    ("invalid parameters: nothing sent", ParamValidationError(report="bad"), False, Unavailable),
]


@pytest.mark.parametrize(("name", "error", "unknown", "kind"), CASES, ids=[c[0] for c in CASES])
def test_outcome_unknown(name: str, error: Exception, unknown: bool, kind: type[AwsCallError]) -> None:
    assert outcome_unknown(error) is unknown, name
    translated = translate("SendMessage", error)
    assert type(translated) is kind, name
    assert translated.operation == "SendMessage"


@pytest.mark.parametrize(("name", "error", "unknown", "kind"), CASES, ids=[c[0] for c in CASES])
def test_a_read_is_never_an_unknown_outcome(
    name: str, error: Exception, unknown: bool, kind: type[AwsCallError]
) -> None:
    translated = translate("GetQueueUrl", error, reads_only=True)
    assert not isinstance(translated, OutcomeUnknown), name
    if unknown:
        assert isinstance(translated, Unavailable | Throttled), name


def test_an_error_botocore_did_not_raise_is_not_translated() -> None:
    with pytest.raises(KeyError):
        translate("SendMessage", KeyError("x"))

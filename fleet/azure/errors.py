"""ARM failures in fleet's terms: translated once, at the SDK boundary.

azure-core raises ``HttpResponseError`` (and subclasses) and ``ServiceRequestError`` /
``ServiceResponseError`` for transport failures. fleet needs three facts from them: is it worth
retrying, what ARM said (code and message, bounded in length), and the correlation id for the
audit trail. Nothing else of a response body is kept: bodies can echo request content.
"""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    DeserializationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from fleet.core.failures import ArmFailure

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MAX_MESSAGE = 300


def bounded(text: str) -> str:
    """ARM's message on one line, at most ``_MAX_MESSAGE`` characters (what fleet keeps)."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _headers(exc: HttpResponseError) -> tuple[str | None, float | None]:
    """(correlation id, Retry-After seconds) of a failed response."""
    headers = getattr(exc.response, "headers", None) or {}
    if not headers:
        return None, None
    correlation = headers.get("x-ms-correlation-request-id") or headers.get("x-ms-request-id")
    retry_after = None
    ra = headers.get("retry-after")
    if ra:
        try:
            retry_after = float(ra)
        except ValueError:
            retry_after = None
    return correlation, retry_after


def describe(exc: BaseException) -> ArmFailure:
    """Translate any exception raised around an SDK call into an ``ArmFailure``."""
    if isinstance(exc, DecodeError):
        # A body that is not JSON (cut short, a proxy's HTML page): transient, worth another
        # try. azure-core's message quotes the body after "Content:"; it is never kept.
        reason = str(exc.message or "").split("\n", 1)[0].split("Content:", 1)[0].strip()
        correlation, _ = _headers(exc)
        return ArmFailure(
            exc.status_code,
            "MalformedResponse",
            bounded(f"the response is not valid JSON ({reason or 'cannot be decoded'})"),
            True,
            correlation,
        )
    if isinstance(exc, DeserializationError):
        # JSON of an unexpected shape: the SDK's models could not read it (bodies not kept).
        return ArmFailure(
            None, "MalformedResponse", "the response does not have the documented shape", False
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = "HttpResponseError"
        message = ""
        error = getattr(exc, "error", None)
        if error is not None:
            code = getattr(error, "code", None) or code
            message = getattr(error, "message", None) or ""
        if not message:
            message = exc.reason or type(exc).__name__
        correlation, retry_after = _headers(exc)
        if isinstance(exc, ResourceNotFoundError):
            code = code if code != "HttpResponseError" else "ResourceNotFound"
        if isinstance(exc, ClientAuthenticationError):
            return ArmFailure(status, code, bounded(message), False, correlation)
        retryable = status is None or status in _RETRYABLE_STATUS
        return ArmFailure(status, code, bounded(message), retryable, correlation, retry_after)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        # Connection refused/reset, TLS failure, timeout: transient by nature.
        return ArmFailure(None, type(exc).__name__, bounded(str(exc.message or exc)), True)
    if isinstance(exc, AzureError):
        return ArmFailure(None, type(exc).__name__, bounded(str(exc.message or exc)), False)
    if isinstance(exc, TimeoutError | ConnectionError):
        return ArmFailure(None, type(exc).__name__, bounded(str(exc)), True)
    return ArmFailure(None, type(exc).__name__, bounded(str(exc)), False)

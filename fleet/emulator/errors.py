"""ARM errors on the wire: one class per error code, each with its HTTP status.

Every error the emulator answers has ARM's body ``{"error": {"code", "message"}}`` (the
``ErrorResponse`` of common-types v2), so the SDK's ``ARMErrorFormat`` parses it and maps the
status to the same exception as against Azure (404 -> ``ResourceNotFoundError``, 409 ->
``ResourceExistsError``, ...). Messages never contain request values: a request body may carry
secrets, and ARM itself does not echo them either.

Errors of long-running operations are not HTTP errors: they travel in the ``error`` field of an
operation-status resource. ``LroError`` holds those, with the codes the emulator uses as
constants below (docs/emulator.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class ArmError(Exception):
    """An ARM error response. Subclasses fix ``code`` and ``status``."""

    code: ClassVar[str] = "InternalServerError"
    status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # An instance may override the class code (scripted faults choose their own).
        self.error_code = code or self.code
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        """ARM's ``ErrorResponse`` body."""
        error: dict[str, Any] = {"code": self.error_code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class StatusError(ArmError):
    """An error whose status is chosen per instance (injected faults: any 4xx/5xx)."""

    def __init__(self, status: int, code: str, message: str, **kwargs: Any) -> None:
        super().__init__(message, code=code, **kwargs)
        self.instance_status = status


def status_of(error: ArmError) -> int:
    """The HTTP status of an error (instance status for ``StatusError``)."""
    return error.instance_status if isinstance(error, StatusError) else error.status


class BadRequest(ArmError):
    code = "BadRequest"
    status = 400


class InvalidRequestContent(ArmError):
    """The body is not JSON, or a field has the wrong type or a forbidden value."""

    code = "InvalidRequestContent"
    status = 400


class MissingApiVersionParameter(ArmError):
    code = "MissingApiVersionParameter"
    status = 400


class NoRegisteredProviderFound(ArmError):
    """An api-version the resource type does not serve (ARM's answer names the supported ones)."""

    code = "NoRegisteredProviderFound"
    status = 400


class InvalidResourceNamespace(ArmError):
    code = "InvalidResourceNamespace"
    status = 404


class InvalidFilterInQueryString(ArmError):
    """A ``$filter`` the emulator does not understand (never a wrong result instead)."""

    code = "InvalidFilterInQueryString"
    status = 400


class InvalidQuery(ArmError):
    """A Resource Graph query outside the supported KQL subset (docs/emulator.md)."""

    code = "InvalidQuery"
    status = 400


class InvalidSkipToken(ArmError):
    code = "InvalidSkipToken"
    status = 400


class PropertyChangeNotAllowed(ArmError):
    """A create-only property changed (flux scope/namespace, extension extensionType/scope)."""

    code = "PropertyChangeNotAllowed"
    status = 400


class AuthenticationFailed(ArmError):
    code = "AuthenticationFailed"
    status = 401


class ExpiredAuthenticationToken(AuthenticationFailed):
    """The bearer token's ``exp`` claim is in the past (ARM's answer to an expired token)."""

    code = "ExpiredAuthenticationToken"


class AuthorizationFailed(ArmError):
    code = "AuthorizationFailed"
    status = 403


class ResourceNotFound(ArmError):
    code = "ResourceNotFound"
    status = 404


class ResourceGroupNotFound(ArmError):
    code = "ResourceGroupNotFound"
    status = 404


class SubscriptionNotFound(ArmError):
    code = "SubscriptionNotFound"
    status = 404


class ParentResourceNotFound(ArmError):
    """A child (extension, flux configuration, ...) of a cluster that does not exist."""

    code = "ParentResourceNotFound"
    status = 404


class InvalidResourceType(ArmError):
    """A path the emulator does not serve (moto answers "not implemented" the same way)."""

    code = "InvalidResourceType"
    status = 404


class MethodNotAllowed(ArmError):
    code = "MethodNotAllowed"
    status = 405


class OperationNotAllowed(ArmError):
    """Extension and flux writes on a stopped AKS cluster (AKS answers 409 for stopped clusters)."""

    code = "OperationNotAllowed"
    status = 409


class MissingSubscriptionRegistration(ArmError):
    """A request to a resource provider the subscription is not registered for."""

    code = "MissingSubscriptionRegistration"
    status = 409


class TooManyRequests(ArmError):
    """ARM's throttling answer when the token bucket is empty (always with ``Retry-After``)."""

    code = "TooManyRequests"
    status = 429


class RateLimiting(ArmError):
    """Resource Graph's answer when the per-user query quota is used up."""

    code = "RateLimiting"
    status = 429


class InternalServerError(ArmError):
    code = "InternalServerError"
    status = 500


class ServiceUnavailable(ArmError):
    code = "ServiceUnavailable"
    status = 503


# Codes of failed long-running operations (the ``error`` of an operation-status resource).
EXTENSION_OPERATION_FAILED = "ExtensionOperationFailed"
OPERATION_TIMED_OUT = "OperationTimedOut"
OPERATION_CANCELED = "OperationCanceled"
INJECTED_LRO_FAILURE = "OperationFailed"


@dataclass(frozen=True, slots=True)
class LroError:
    """Why a long-running operation ends ``Failed``."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

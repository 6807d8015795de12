"""Apply: carry out one planned ``Action`` through the SDK's long-running operations.

Writes are PUTs of the full desired body (the simplest idempotent "ensure") and DELETEs. Each
is split in two so that no caller has to block for minutes:

- ``start(session, action, protected)`` sends the request and returns a ``Started`` holding the
  SDK poller, its continuation token (JSON in azure-core >= 1.41: method, URL, client request id
  and the *response* body; never the request body, so never a secret) and ARM's correlation id;
- ``finish(started)`` or ``resume(session, action, token)`` polls to the end and returns an
  ``Outcome`` with ARM's error code and message when the operation failed;
- or, for callers that poll many operations from one place (a wave's shared poller, a Celery
  poll task), ``start(..., deferred=True)`` sends the request *without* azure-core's poller
  (whose constructor starts a thread that polls at once, on its own schedule) and keeps the
  operation's status URL and ARM's ``Retry-After``; ``poll_once(session, action, url)`` then
  reads that status exactly once. A finished operation is not followed by a GET of the resource
  (azure-core's final GET): the job reads the resource anyway to verify it.

Protected settings arrive as values resolved by the caller at the last moment; they go into
the request body and nowhere else.

Extensions and flux configurations are written through their own SDK packages at the
api-versions of ``fleet.azure.api_versions``; the body is sent as the JSON fleet built (never
through a model, which would drop what its version does not describe) and the final resource
comes back as ARM's JSON (``_raw``), so an unknown enum value or an extra property in ARM's
answer never fails a write that succeeded. Flux v1 configurations are only deleted, through
the multi-API client.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import DecodeError, ResourceNotFoundError
from azure.core.pipeline import PipelineResponse
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.core.polling.arm_polling import ARMPolling

from fleet.azure import api_versions, retrying
from fleet.azure.errors import bounded, describe
from fleet.azure.inventory import send_json
from fleet.azure.session import AzureSession
from fleet.core import redact
from fleet.core.errors import ArmCallFailed
from fleet.core.failures import ArmFailure
from fleet.core.ids import ClusterId, split_child
from fleet.plan.actions import Action, ActionKind


@dataclass
class Outcome:
    """How one write ended."""

    action: Action
    succeeded: bool
    error: ArmFailure | None = None
    correlation_id: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    #: The resource state ARM returned at the end (PUTs), for the audit trail.
    provisioning_state: str | None = None


@dataclass
class Started:
    """A write that ARM accepted and is running (or already finished, for synchronous ones)."""

    action: Action
    poller: LROPoller[Any] | None
    continuation_token: str | None
    correlation_id: str | None
    started_at: datetime
    #: Set when the request failed before any operation started (e.g. 409, 400, throttled).
    failed: ArmFailure | None = None
    #: ``deferred`` starts: the Azure-AsyncOperation (or Location) URL to poll, None when the
    #: write finished synchronously, and the seconds ARM asked to wait before the first poll.
    operation_url: str | None = None
    retry_after: float = 1.0
    #: ``deferred`` starts that finished at once (no operation to poll): how they ended.
    done: Outcome | None = None


#: Seconds to wait before a poll when ARM sends no ``Retry-After`` (azure-core's default is
#: 30 s for ARM; a write of an extension typically ends in seconds, so fleet asks sooner).
DEFAULT_RETRY_AFTER = 1.0
#: Never wait longer than this between two polls of one operation, whatever ARM says.
MAX_RETRY_AFTER = 60.0
_TERMINAL_OK = frozenset({"succeeded"})
_TERMINAL_BAD = frozenset({"failed", "canceled", "cancelled"})
_CANCELED = frozenset({"canceled", "cancelled"})
_DELETES = frozenset(
    {ActionKind.DELETE_EXTENSION, ActionKind.DELETE_FLUX_CONFIG, ActionKind.DELETE_FLUX_V1}
)


class _Correlation:
    """Captures ARM's correlation id from the first response of a call (raw_response_hook),
    and the operation's headers from the last one (a deferred start polls them itself)."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.status: int | None = None
        self.operation_url: str | None = None
        self.retry_after: float | None = None
        self._lock = threading.Lock()

    def __call__(self, response: PipelineResponse) -> None:  # type: ignore[type-arg]
        headers = response.http_response.headers
        with self._lock:
            if self.value is None:
                self.value = headers.get("x-ms-correlation-request-id") or headers.get(
                    "x-ms-request-id"
                )
            self.status = response.http_response.status_code
            self.operation_url = headers.get("azure-asyncoperation") or headers.get("location")
            self.retry_after = retry_after_of(headers)


def retry_after_of(headers: Any) -> float | None:
    """ARM's ``Retry-After`` in seconds (integer seconds; the HTTP-date form is not used by
    ARM's operations), bounded by ``MAX_RETRY_AFTER``; None when absent or unreadable."""
    raw = headers.get("retry-after")
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        return None
    if seconds is None or seconds <= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _with_secrets(action: Action, protected: dict[str, str]) -> dict[str, Any]:
    """The request body with protected values inserted (a fresh copy; the action is untouched).

    A key starting with ``/`` is a JSON pointer below ``properties`` (e.g. ``/azureBlob/sasToken``);
    any other key is a ``configurationProtectedSettings`` entry.
    """
    body: dict[str, Any] = _deep_copy(action.body or {})
    props = body.setdefault("properties", {})
    for key, value in protected.items():
        redact.register(value)
        if key.startswith("/"):
            node = props
            parts = [p.replace("~1", "/").replace("~0", "~") for p in key.strip("/").split("/")]
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        else:
            props.setdefault("configurationProtectedSettings", {})[key] = value
    return body


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _target(action: Action) -> tuple[dict[str, str], str, str]:
    cluster = ClusterId.parse(action.cluster_id)
    provider, ctype = {
        "managedClusters": ("Microsoft.ContainerService", "managedClusters"),
        "connectedClusters": ("Microsoft.Kubernetes", "connectedClusters"),
    }[cluster.cluster_type]
    _, child_type, name = split_child(action.resource_id)
    args = {
        "resource_group_name": cluster.resource_group,
        "cluster_rp": provider,
        "cluster_resource_name": ctype,
        "cluster_name": cluster.name,
    }
    return args, child_type, name


def _ops(client: Any) -> Any:
    """A client whose operations are called with fleet's JSON bodies and keyword sets (the
    SDKs' overloads are typed for models and one argument style at a time)."""
    return client


def _json_of_stored_response() -> None:
    """Give azure-core's stand-in for a response rebuilt from a continuation token a ``json()``.

    A poller resumed from a token (a Celery poll task, ``fleet remediate --resume``) may finish
    on the response stored in the token, which azure-core rebuilds as
    ``_ContinuationTokenHttpResponse``: it has ``text()`` but no ``json()``, and the
    fluxConfigurations and extensions SDKs call ``response.json()`` on the final response
    before fleet's ``cls`` sees it, so such a write ended ``failed (AttributeError)`` although
    ARM had done it. Added once, only where azure-core lacks it.
    """
    from azure.core.polling import base_polling

    stand_in = getattr(base_polling, "_ContinuationTokenHttpResponse", None)
    if stand_in is not None and not hasattr(stand_in, "json"):

        def _json(self: Any) -> Any:
            return json.loads(self.text()) if self.content else None

        stand_in.json = _json


_json_of_stored_response()


def _raw(pipeline_response: PipelineResponse, model: Any, headers: Any) -> Any:  # type: ignore[type-arg]
    """An LRO's final resource as the JSON ARM sent (``cls`` of the SDK's operations).

    A poller rebuilt from a continuation token may hand over azure-core's stand-in for the
    response it stored (``_ContinuationTokenHttpResponse``), which has ``text()`` but no
    ``json()``: the body is decoded from the text, whichever response it is.
    """
    response = pipeline_response.http_response
    if not response.content:
        return None
    try:
        return json.loads(response.text())
    except ValueError:
        return None


def start(
    session: AzureSession,
    action: Action,
    protected: dict[str, str] | None = None,
    *,
    deferred: bool = False,
) -> Started:
    """Send the write. ARM failures are returned in ``Started.failed``, not raised.

    ``deferred``: no azure-core poller (its thread would poll at once); the caller polls
    ``Started.operation_url`` with ``poll_once`` when ``Started.retry_after`` has passed.
    The continuation token is the same either way (the initial response), so ``resume`` can
    still finish a deferred write from it."""
    sub = ClusterId.parse(action.cluster_id).subscription_id
    args, _, name = _target(action)
    correlation = _Correlation()
    now = datetime.now(UTC)
    hooks: dict[str, Any] = {"raw_response_hook": correlation, "cls": _raw}
    if deferred:
        hooks["polling"] = False
    try:
        poller: LROPoller[Any] | None
        if action.kind == ActionKind.PUT_EXTENSION:
            poller = _ops(session.extensions(sub)).extensions.begin_create(
                extension_name=name,
                extension=_with_secrets(action, protected or {}),
                **hooks,
                **args,
            )
        elif action.kind == ActionKind.PUT_FLUX_CONFIG:
            poller = _ops(
                session.flux_configurations(sub)
            ).flux_configurations.begin_create_or_update(
                flux_configuration_name=name,
                flux_configuration=_with_secrets(action, protected or {}),
                **hooks,
                **args,
            )
        elif action.kind == ActionKind.DELETE_EXTENSION:
            poller = _ops(session.extensions(sub)).extensions.begin_delete(
                extension_name=name, **_delete_hooks(correlation, deferred), **args
            )
        elif action.kind == ActionKind.DELETE_FLUX_CONFIG:
            poller = _ops(session.flux_configurations(sub)).flux_configurations.begin_delete(
                flux_configuration_name=name, **_delete_hooks(correlation, deferred), **args
            )
        elif action.kind == ActionKind.DELETE_FLUX_V1:
            poller = _ops(session.source_control(sub)).source_control_configurations.begin_delete(
                source_control_configuration_name=name,
                **_delete_hooks(correlation, deferred),
                **args,
            )
        else:  # pragma: no cover - ActionKind is closed
            raise ValueError(f"unknown action kind {action.kind}")
    except Exception as exc:
        return Started(action, None, None, correlation.value, now, failed=describe(exc))
    token: str | None
    try:
        token = _arm_token(poller) if deferred else poller.continuation_token()
    except Exception:  # a synchronous operation has no token worth keeping
        token = None
    if not deferred:
        return Started(action, poller, token, correlation.value, now)
    started = Started(action, None, token, correlation.value, now)
    started.retry_after = correlation.retry_after or DEFAULT_RETRY_AFTER
    if correlation.operation_url and correlation.status in (200, 201, 202):
        # An update answers 200 with its operation's URL, as a create answers 201.
        started.operation_url = correlation.operation_url
    else:  # finished synchronously (204 of a DELETE of nothing, no operation): nothing to poll
        started.continuation_token = None
        started.done = Outcome(action, True, None, correlation.value, now, datetime.now(UTC))
    return started


def _arm_token(poller: LROPoller[Any]) -> str | None:
    """The continuation token ARM polling would give (``NoPolling``'s own cannot encode the
    response): the initial response, serialised by an ``ARMPolling`` fleet makes for it, so
    ``resume`` finishes a deferred write exactly as any other."""
    initial = getattr(poller.polling_method(), "_initial_response", None)
    if initial is None:
        return None
    arm = ARMPolling()
    arm._initial_response = initial
    return arm.get_continuation_token()


def _delete_hooks(correlation: _Correlation, deferred: bool) -> dict[str, Any]:
    hooks: dict[str, Any] = {"raw_response_hook": correlation}
    if deferred:
        hooks["polling"] = False
    return hooks


@dataclass
class Poll:
    """One look at a running operation: how it ended, or when to look again."""

    outcome: Outcome | None
    retry_after: float = DEFAULT_RETRY_AFTER


def poll_once(
    session: AzureSession,
    action: Action,
    url: str,
    *,
    started_at: datetime | None = None,
    correlation_id: str | None = None,
) -> Poll:
    """Read an operation's status once (one GET of its Azure-AsyncOperation URL, through the
    subscription's pipeline: credential, fleet's budget, retries). A failed read is an
    ``Outcome`` only when it is final (404 of the operation, 401/403); a transient one is
    another look after the usual pause. ARM's operation error becomes the outcome's error."""
    sub = ClusterId.parse(action.cluster_id).subscription_id
    began = started_at or datetime.now(UTC)
    headers: dict[str, Any] = {}

    def seen(response: Any) -> None:
        headers["retry-after"] = response.headers.get("retry-after")

    try:
        body = send_json(session.extensions(sub), HttpRequest("GET", url), on_response=seen)
    except Exception as exc:
        failure = describe(exc)
        if failure.retryable:
            return Poll(None, failure.retry_after or DEFAULT_RETRY_AFTER)
        return Poll(Outcome(action, False, failure, correlation_id, began, datetime.now(UTC)))
    status = str((body or {}).get("status") or "") if isinstance(body, dict) else ""
    if status.lower() in _CANCELED:
        # ARM cancels an operation that a newer request for the same resource superseded (a
        # PUT fleet sent again after a client timeout whose first copy landed late, or another
        # writer's): the resource, not this operation, says how the write ended, and the
        # job's verification then judges what the resource holds.
        return _follow_resource(session, action, began, correlation_id)
    if status.lower() in _TERMINAL_OK:
        return Poll(Outcome(action, True, None, correlation_id, began, datetime.now(UTC)))
    if status.lower() in _TERMINAL_BAD:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        failure = ArmFailure(
            200,
            str(error.get("code") or f"Operation{status}"),
            bounded(str(error.get("message") or f"the operation ended {status}")),
            False,
            correlation_id,
        )
        return Poll(Outcome(action, False, failure, correlation_id, began, datetime.now(UTC)))
    return Poll(None, retry_after_of(headers) or DEFAULT_RETRY_AFTER)


def _follow_resource(
    session: AzureSession, action: Action, began: datetime, correlation_id: str | None
) -> Poll:
    """How a write whose operation was superseded ended: from the resource's own
    ``provisioningState`` (another look later while it is still being written)."""
    try:
        resource = read_target(session, action)
    except ArmCallFailed:
        return Poll(None, DEFAULT_RETRY_AFTER)
    if resource is None:
        ok, state = action.kind in _DELETES, "gone"
    else:
        props = resource.get("properties")
        state = str((props or {}).get("provisioningState") or "") if isinstance(props, dict) else ""
        if state.lower() not in _TERMINAL_OK | _TERMINAL_BAD:
            return Poll(None, DEFAULT_RETRY_AFTER)
        ok = state.lower() in _TERMINAL_OK and action.kind not in _DELETES
    if ok:
        return Poll(Outcome(action, True, None, correlation_id, began, datetime.now(UTC)))
    failure = ArmFailure(
        200,
        "OperationCanceled",
        f"the operation was superseded by a newer request and the resource is {state or 'unknown'}",
        False,
        correlation_id,
    )
    return Poll(Outcome(action, False, failure, correlation_id, began, datetime.now(UTC)))


def finish(started: Started, *, timeout: float | None = None) -> Outcome:
    """Poll a started write to its end (at most ``timeout`` seconds)."""
    action = started.action
    if started.failed is not None or started.poller is None:
        return Outcome(
            action,
            False,
            started.failed,
            started.correlation_id,
            started.started_at,
            datetime.now(UTC),
        )
    try:
        result = started.poller.result(timeout=timeout)
    except Exception as exc:
        return Outcome(
            action,
            False,
            describe(exc),
            started.correlation_id,
            started.started_at,
            datetime.now(UTC),
        )
    if not started.poller.done():
        failure = ArmFailure(None, "OperationTimeout", f"still running after {timeout:.0f}s", True)
        return Outcome(
            action, False, failure, started.correlation_id, started.started_at, datetime.now(UTC)
        )
    props = result.get("properties") if isinstance(result, dict) else None
    state = props.get("provisioningState") if isinstance(props, dict) else None
    state = state if isinstance(state, str) else None
    return Outcome(
        action, True, None, started.correlation_id, started.started_at, datetime.now(UTC), state
    )


def resume(session: AzureSession, action: Action, token: str) -> Started:
    """Rebuild a poller from a persisted continuation token (another process may resume it)."""
    sub = ClusterId.parse(action.cluster_id).subscription_id
    args, _, name = _target(action)
    now = datetime.now(UTC)
    try:
        poller: LROPoller[Any]
        if action.kind == ActionKind.PUT_EXTENSION:
            poller = _ops(session.extensions(sub)).extensions.begin_create(
                extension_name=name, extension=None, continuation_token=token, cls=_raw, **args
            )
        elif action.kind == ActionKind.PUT_FLUX_CONFIG:
            poller = _ops(
                session.flux_configurations(sub)
            ).flux_configurations.begin_create_or_update(
                flux_configuration_name=name,
                flux_configuration=None,
                continuation_token=token,
                cls=_raw,
                **args,
            )
        elif action.kind == ActionKind.DELETE_EXTENSION:
            poller = _ops(session.extensions(sub)).extensions.begin_delete(
                extension_name=name, continuation_token=token, **args
            )
        elif action.kind == ActionKind.DELETE_FLUX_CONFIG:
            poller = _ops(session.flux_configurations(sub)).flux_configurations.begin_delete(
                flux_configuration_name=name, continuation_token=token, **args
            )
        else:
            poller = _ops(session.source_control(sub)).source_control_configurations.begin_delete(
                source_control_configuration_name=name, continuation_token=token, **args
            )
    except Exception as exc:
        return Started(action, None, token, None, now, failed=describe(exc))
    return Started(action, poller, token, None, now)


def apply(
    session: AzureSession,
    action: Action,
    protected: dict[str, str] | None = None,
    *,
    timeout: float | None = None,
) -> Outcome:
    """Start and finish one write (the local engine's path)."""
    began = time.monotonic()
    started = start(session, action, protected)
    remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - began))
    return finish(started, timeout=remaining)


_CHILD_VERSIONS = {
    ActionKind.PUT_EXTENSION: api_versions.EXTENSIONS,
    ActionKind.DELETE_EXTENSION: api_versions.EXTENSIONS,
    ActionKind.PUT_FLUX_CONFIG: api_versions.FLUX_CONFIGURATIONS,
    ActionKind.DELETE_FLUX_CONFIG: api_versions.FLUX_CONFIGURATIONS,
    ActionKind.DELETE_FLUX_V1: api_versions.SOURCE_CONTROL_CONFIGURATIONS,
}


def read_target(session: AzureSession, action: Action) -> dict[str, Any] | None:
    """The resource an action writes, as ARM has it now (one GET; None when it does not
    exist). The guard right before a write: what the job judges it by. Raises
    ``ArmCallFailed`` when ARM cannot say (after the session's read attempts)."""
    sub = ClusterId.parse(action.cluster_id).subscription_id
    client = (
        session.flux_configurations(sub)
        if action.kind in (ActionKind.PUT_FLUX_CONFIG, ActionKind.DELETE_FLUX_CONFIG)
        else session.extensions(sub)
    )
    request = HttpRequest(
        "GET", action.resource_id, params={"api-version": _CHILD_VERSIONS[action.kind]}
    )

    def get() -> dict[str, Any] | None:
        try:
            body = send_json(client, request)
        except ResourceNotFoundError:
            return None
        if not isinstance(body, dict):
            raise DecodeError(message="JSON is invalid: a resource must be an object")
        return body

    return retrying.call(
        get, attempts=session.settings.read_attempts, what=f"read {action.resource_id}"
    )

"""Apply: carry out one planned ``Action`` through the SDK's long-running operations.

Writes are PUTs of the full desired body (the simplest idempotent "ensure") and DELETEs. Each
is split in two so that no caller has to block for minutes:

- ``start(session, action, protected)`` sends the request and returns a ``Started`` holding the
  SDK poller, its continuation token (JSON in azure-core >= 1.41: method, URL, client request id
  and the *response* body; never the request body, so never a secret) and ARM's correlation id;
- ``finish(started)`` or ``resume(session, action, token)`` polls to the end and returns an
  ``Outcome`` with ARM's error code and message when the operation failed.

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

from azure.core.pipeline import PipelineResponse
from azure.core.polling import LROPoller

from fleet.azure.errors import describe
from fleet.azure.session import AzureSession
from fleet.core import redact
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


class _Correlation:
    """Captures ARM's correlation id from the first response of a call (raw_response_hook)."""

    def __init__(self) -> None:
        self.value: str | None = None
        self._lock = threading.Lock()

    def __call__(self, response: PipelineResponse) -> None:  # type: ignore[type-arg]
        with self._lock:
            if self.value is None:
                headers = response.http_response.headers
                self.value = headers.get("x-ms-correlation-request-id") or headers.get(
                    "x-ms-request-id"
                )


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
    session: AzureSession, action: Action, protected: dict[str, str] | None = None
) -> Started:
    """Send the write. ARM failures are returned in ``Started.failed``, not raised."""
    sub = ClusterId.parse(action.cluster_id).subscription_id
    args, _, name = _target(action)
    correlation = _Correlation()
    now = datetime.now(UTC)
    hooks: dict[str, Any] = {"raw_response_hook": correlation, "cls": _raw}
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
                extension_name=name, raw_response_hook=correlation, **args
            )
        elif action.kind == ActionKind.DELETE_FLUX_CONFIG:
            poller = _ops(session.flux_configurations(sub)).flux_configurations.begin_delete(
                flux_configuration_name=name, raw_response_hook=correlation, **args
            )
        elif action.kind == ActionKind.DELETE_FLUX_V1:
            poller = _ops(session.source_control(sub)).source_control_configurations.begin_delete(
                source_control_configuration_name=name, raw_response_hook=correlation, **args
            )
        else:  # pragma: no cover - ActionKind is closed
            raise ValueError(f"unknown action kind {action.kind}")
    except Exception as exc:
        return Started(action, None, None, correlation.value, now, failed=describe(exc))
    token: str | None
    try:
        token = poller.continuation_token()
    except Exception:  # a synchronous operation has no token worth keeping
        token = None
    return Started(action, poller, token, correlation.value, now)


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

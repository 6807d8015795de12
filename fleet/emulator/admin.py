"""The admin routes under ``/_emulator/``: state, clock, faults, catalogue, roles, statistics
(and the Key Vaults', served by ``keyvault.admin``).

Loopback clients only (server.py checks); docs/emulator.md lists every route. Tests and the
demo drive the emulator through these (``fleet.emulator.testing.AdminClient``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from fleet.emulator import keyvault
from fleet.emulator.backend import Backend
from fleet.emulator.clock import parse_time
from fleet.emulator.errors import InvalidRequestContent, ResourceNotFound
from fleet.emulator.faults import FaultSpecError, parse_fault
from fleet.emulator.responses import JSON, Components, Query, Reply, json_reply
from fleet.emulator.snapshot import dumps


def serve(c: Components, method: str, path: str, query: Query, body: bytes) -> Reply:
    """``/_emulator/...``: state, clock, faults, catalogue, roles, statistics (docs/emulator.md)."""
    sub = path.removeprefix("/_emulator").strip("/")
    payload: Any = None
    if body:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequestContent("The admin request body is not JSON.") from None
    if sub == "vaults" or sub.startswith("vaults/"):
        return keyvault.admin(c, method, sub, payload)
    backend = c.backend
    route = (method, sub.split("/")[0] if "/" in sub and sub.startswith("faults/") else sub)
    if route == ("GET", "snapshot"):
        backend.tick()
        return Reply(200, dumps(backend.dump()), [JSON])
    if route == ("GET", "health"):
        return json_reply(200, {"status": "ok"})
    if route == ("GET", "stats"):
        return json_reply(200, c.stats.to_json())
    if route == ("POST", "stats/reset"):
        c.stats.reset()
        return json_reply(200, c.stats.to_json())
    if route == ("GET", "requests"):
        return json_reply(200, {"value": c.stats.requests_log()})
    if route == ("DELETE", "requests"):
        c.stats.clear_log()
        return Reply(204)
    if route == ("GET", "clock"):
        backend.tick()
        return json_reply(200, backend.clock.to_json())
    if route == ("POST", "clock"):
        return json_reply(200, _clock(backend, payload))
    if route == ("GET", "faults"):
        return json_reply(200, {"value": c.faults.to_json()})
    if route == ("POST", "faults"):
        specs = (
            payload.get("faults")
            if isinstance(payload, dict) and "faults" in payload
            else [payload]
        )
        if not isinstance(specs, list):
            raise InvalidRequestContent("'faults' must be a list of fault specifications.")
        try:
            added = [parse_fault(spec, f"faults[{i}]") for i, spec in enumerate(specs)]
        except FaultSpecError as exc:
            raise InvalidRequestContent(str(exc)) from None
        for fault in added:
            c.faults.add(fault)
        return json_reply(201, {"value": [f.to_json() for f in added]})
    if route == ("DELETE", "faults"):
        if sub.startswith("faults/"):
            if not c.faults.remove(sub.removeprefix("faults/")):
                raise ResourceNotFound(f"No fault with id '{sub.removeprefix('faults/')}'.")
        else:
            c.faults.clear()
        return Reply(204)
    if route == ("GET", "catalog"):
        return json_reply(200, backend.catalog())
    if route == ("PUT", "catalog"):
        moved = backend.set_catalog(payload)
        return json_reply(200, {"extensionTypeVersions": backend.catalog(), "upgraded": moved})
    if route == ("POST", "catalog/publish"):
        return json_reply(200, backend.publish_release(payload))
    if route == ("PUT", "failing-sources"):
        urls = payload.get("failingSources") if isinstance(payload, dict) else None
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise InvalidRequestContent('Expected {"failingSources": [url, ...]}.')
        backend.set_failing_sources(urls)
        return json_reply(200, {"failingSources": sorted(backend.failing_sources)})
    if route == ("PUT", "resources"):
        return json_reply(200, backend.upsert_resource(payload))
    if route == ("GET", "roles"):
        return json_reply(200, {"value": c.roles.to_json()})
    if route == ("POST", "roles"):
        principal = payload.get("principal") if isinstance(payload, dict) else None
        actions = payload.get("actions") if isinstance(payload, dict) else None
        if (
            not isinstance(principal, str)
            or not isinstance(actions, list)
            or not all(isinstance(a, str) for a in actions)
        ):
            raise InvalidRequestContent('Expected {"principal": str, "actions": [str, ...]}.')
        c.roles.assign(principal, actions)
        return json_reply(200, {"value": c.roles.to_json()})
    if route == ("DELETE", "roles"):
        c.roles.clear()
        return Reply(204)
    if route == ("POST", "throttle/reset"):
        c.throttle.reset()
        c.quota.reset()
        return Reply(204)
    raise ResourceNotFound(f"No admin route '{method} {path}' (see docs/emulator.md).")


def _clock(backend: Backend, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or len(payload) != 1:
        raise InvalidRequestContent('Expected {"advanceSeconds": N} or {"set": "<ISO time>"}.')
    try:
        if "advanceSeconds" in payload:
            seconds = payload["advanceSeconds"]
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                raise ValueError("advanceSeconds must be a number")
            backend.advance_clock(float(seconds))
        elif "set" in payload:
            moment: datetime = parse_time(str(payload["set"]))
            backend.set_clock(moment)
        else:
            raise ValueError('expected "advanceSeconds" or "set"')
    except ValueError as exc:
        raise InvalidRequestContent(f"Cannot move the clock: {exc}.") from None
    return backend.clock.to_json()

"""The HTTP layer: read parameters from a request, call the backend once, serialize its answer.

Like moto's ``responses.py``, there is no logic here beyond HTTP: status codes, headers
(``Azure-AsyncOperation``, ``Retry-After``, ``nextLink`` paging) and JSON bodies. Every handler
takes a ``Call`` and returns a ``Reply``; ``ArmError`` raised below becomes ARM's error body in
server.py. The admin routes under ``/_emulator/`` are here too (``admin``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from fleet.emulator import graph
from fleet.emulator.backend import Backend
from fleet.emulator.clock import parse_time
from fleet.emulator.errors import InvalidQuery, InvalidRequestContent, ResourceNotFound
from fleet.emulator.faults import FaultSet, FaultSpecError, parse_fault
from fleet.emulator.kql import GraphQueryError
from fleet.emulator.rbac import Roles
from fleet.emulator.routes import Resolved
from fleet.emulator.snapshot import dumps
from fleet.emulator.stats import Stats
from fleet.emulator.throttle import ArmThrottle, GraphQuota
from fleet.emulator.writes import WriteContext, WriteResult

JSON = (b"content-type", b"application/json; charset=utf-8")


@dataclass(slots=True)
class Components:
    """Everything the handlers talk to (one per running emulator)."""

    backend: Backend
    faults: FaultSet
    stats: Stats
    roles: Roles
    throttle: ArmThrottle
    quota: GraphQuota
    #: Results of paged Resource Graph queries, for their continuation pages.
    cursors: graph.Cursors = field(default_factory=graph.Cursors)


@dataclass(slots=True)
class Call:
    """One ARM request as the handlers see it."""

    c: Components
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    base_url: str
    resolved: Resolved | None = None
    write: WriteContext = field(default_factory=lambda: WriteContext(principal="unknown"))

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")

    def json(self) -> Any:
        if not self.body:
            raise InvalidRequestContent("The request content was empty.")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise InvalidRequestContent(
                "The request content was invalid and could not be deserialized."
            ) from None


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_reply(
    status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> Reply:
    return Reply(status, orjson.dumps(payload), [JSON, *(headers or [])])


def _paged(call: Call, items: list[Any], top: int | None = None) -> Reply:
    """``{value, nextLink}`` with an absolute nextLink that keeps the query (but api-version)."""
    page, next_token = call.c.backend.page(items, call.query.get("$skiptoken"), top)
    payload: dict[str, Any] = {"value": page}
    if next_token is not None:
        params = {
            k: v for k, v in call.query.items() if k.lower() not in ("api-version", "$skiptoken")
        }
        params["api-version"] = call.api_version
        params["$skiptoken"] = next_token
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="$")
        payload["nextLink"] = f"{call.base_url}{call.path}?{query}"
    # On the last page nextLink is left out: the spec types it as a (non-nullable) string.
    return json_reply(200, payload)


def _lro_headers(call: Call, result: WriteResult) -> list[tuple[bytes, bytes]]:
    op = result.operation
    if op is None:
        return []
    url = f"{call.base_url}{op.url_path}?api-version={urllib.parse.quote(call.api_version)}"
    return [
        (b"azure-asyncoperation", url.encode()),
        (b"operation-location", url.encode()),
        (b"retry-after", str(call.c.backend.options.retry_after).encode()),
        (b"x-ms-async-operation-timeout", result.timeout.encode()),
    ]


# --------------------------------------------------------------------------- ARM handlers


def list_tenants(call: Call) -> Reply:
    return _paged(call, call.c.backend.list_tenants())


def list_subscriptions(call: Call) -> Reply:
    return _paged(call, call.c.backend.list_subscriptions())


def get_subscription(call: Call) -> Reply:
    return json_reply(200, call.c.backend.get_subscription(_p(call, "sub")))


def list_resource_groups(call: Call) -> Reply:
    groups = call.c.backend.list_resource_groups(_p(call, "sub"), call.query.get("$filter"))
    return _paged(call, groups, _top(call))


def get_resource_group(call: Call) -> Reply:
    return json_reply(200, call.c.backend.get_resource_group(_p(call, "sub"), _p(call, "rg")))


def list_resources(call: Call) -> Reply:
    assert call.resolved is not None
    items = call.c.backend.list_resources(
        _p(call, "sub"),
        call.resolved.params.get("rg"),
        call.query.get("$filter"),
        call.query.get("$expand"),
    )
    return _paged(call, items, _top(call))


def list_clusters(call: Call) -> Reply:
    assert call.resolved is not None
    p = call.resolved.params
    return _paged(call, call.c.backend.list_clusters(p["sub"], p.get("rg"), p["rp"], p["ctype"]))


def get_cluster(call: Call) -> Reply:
    assert call.resolved is not None
    return json_reply(200, call.c.backend.get_cluster(call.resolved.cluster))


def get_by_id(call: Call) -> Reply:
    return json_reply(200, call.c.backend.get_by_id(call.path))


def list_extension_type_versions(call: Call) -> Reply:
    versions = call.c.backend.list_extension_type_versions(
        _p(call, "sub"), _p(call, "loc"), _p(call, "ext")
    )
    return _paged(call, versions)


def list_children(call: Call) -> Reply:
    assert call.resolved is not None
    return _paged(call, call.c.backend.list_children(call.resolved.cluster, call.resolved.kind))


def child(call: Call) -> Reply:
    """GET, PUT, PATCH and DELETE of an extension, flux or source control configuration."""
    r = call.resolved
    assert r is not None
    backend, name = call.c.backend, r.params["name"]
    if call.method == "GET":
        return json_reply(200, backend.get_child(r.cluster, r.kind, name))
    if call.method == "PUT":
        result = backend.put_child(r.cluster, r.kind, name, call.json(), call.write)
    elif call.method == "PATCH":
        result = backend.patch_child(r.cluster, r.kind, name, call.json(), call.write)
    else:
        force = call.query.get("forceDelete", "").lower() == "true"
        result = backend.delete_child(r.cluster, r.kind, name, force, call.write)
    headers = _lro_headers(call, result)
    if result.body is None:
        return Reply(result.status, b"", headers)
    return json_reply(result.status, result.body, headers)


def get_operation(call: Call) -> Reply:
    r = call.resolved
    assert r is not None
    op = call.c.backend.get_operation(r.cluster, r.kind, r.params["name"], r.params["op"])
    headers = (
        [] if op.terminal else [(b"retry-after", str(call.c.backend.options.retry_after).encode())]
    )
    return json_reply(200, op.to_json(), headers)


def list_operations(call: Call) -> Reply:
    assert call.resolved is not None
    return _paged(call, call.c.backend.list_operations(call.resolved.cluster))


def rp_operations(call: Call) -> Reply:
    return _paged(call, RP_OPERATIONS)


def graph_query(call: Call) -> Reply:
    try:
        request = graph.parse_request(call.json())
        body = graph.execute(
            request,
            call.c.backend.graph_rows,
            call.c.backend.options.graph_page_size,
            call.c.cursors,
        )
    except GraphQueryError as exc:
        raise InvalidQuery(f"Query is invalid: {exc}.") from None
    return json_reply(200, body)


HANDLERS: dict[str, Callable[[Call], Reply]] = {
    "list_tenants": list_tenants,
    "list_subscriptions": list_subscriptions,
    "get_subscription": get_subscription,
    "list_resource_groups": list_resource_groups,
    "get_resource_group": get_resource_group,
    "list_resources": list_resources,
    "list_clusters": list_clusters,
    "get_cluster": get_cluster,
    "get_by_id": get_by_id,
    "list_extension_type_versions": list_extension_type_versions,
    "list_children": list_children,
    "child": child,
    "get_operation": get_operation,
    "list_operations": list_operations,
    "rp_operations": rp_operations,
    "graph": graph_query,
}


def _p(call: Call, name: str) -> str:
    assert call.resolved is not None
    return call.resolved.params[name]


def _top(call: Call) -> int | None:
    raw = call.query.get("$top")
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidRequestContent("The query parameter '$top' must be a non-negative integer.")
    return int(raw)


def _operation(resource: str, verb: str, description: str) -> dict[str, Any]:
    return {
        "name": f"Microsoft.KubernetesConfiguration/{resource}/{verb}",
        "display": {
            "provider": "Microsoft KubernetesConfiguration",
            "resource": resource,
            "operation": verb,
            "description": description,
        },
        "isDataAction": False,
        "origin": "user,system",
    }


RP_OPERATIONS = [
    _operation(res, verb, f"{verb.capitalize()}s {res}.")
    for res in ("extensions", "fluxConfigurations", "sourceControlConfigurations")
    for verb in ("read", "write", "delete")
] + [
    _operation("extensions/operations", "read", "Gets async operation status of extensions."),
    _operation("fluxConfigurations/operations", "read", "Gets async operation status."),
]


# --------------------------------------------------------------------------- admin handlers


def admin(c: Components, method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
    """``/_emulator/...``: state, clock, faults, catalogue, roles, statistics (docs/emulator.md)."""
    sub = path.removeprefix("/_emulator").strip("/")
    payload: Any = None
    if body:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequestContent("The admin request body is not JSON.") from None
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

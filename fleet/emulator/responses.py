"""The HTTP layer: read parameters from a request, call the backend once, serialize its answer.

Like moto's ``responses.py``, there is no logic here beyond HTTP: status codes, headers
(``Azure-AsyncOperation``, ``Retry-After``, ``nextLink`` paging) and JSON bodies. Every handler
takes a ``Call`` and returns a ``Reply``; ``ArmError`` raised below becomes ARM's error body in
server.py. The admin routes under ``/_emulator/`` are here too (``admin``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from fleet.core.ids import KC_PROVIDER
from fleet.emulator import graph, shapes
from fleet.emulator.backend import Backend
from fleet.emulator.catalog import CATALOG_VERSIONS
from fleet.emulator.errors import (
    InvalidQuery,
    InvalidRequestContent,
    MissingSubscriptionRegistration,
    NoRegisteredProviderFound,
)
from fleet.emulator.faults import FaultSet
from fleet.emulator.kql import GraphQueryError
from fleet.emulator.maintenance import MAINTENANCE_VERSIONS
from fleet.emulator.rbac import Roles
from fleet.emulator.routes import Resolved
from fleet.emulator.rules import RULES
from fleet.emulator.stats import Stats
from fleet.emulator.throttle import ArmThrottle, GraphQuota
from fleet.emulator.writes import WriteContext, WriteResult

JSON = (b"content-type", b"application/json; charset=utf-8")
#: The api-versions of the operation lists (any version of a Microsoft.KubernetesConfiguration
#: resource type lists them).
_KC_VERSIONS = frozenset(v for rules in RULES.values() for v in rules.versions)


class Query(Mapping[str, str]):
    """A request's query parameters, looked up by name without case, as ARM matches them (the
    resource provider itself sends ``?api-Version=`` in its Azure-AsyncOperation URLs).
    Iterating gives the names as the client spelt them."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._items = dict(pairs)
        self._lower = {k.lower(): v for k, v in self._items.items()}

    def __getitem__(self, key: str) -> str:
        return self._lower[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower


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
    query: Query
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
    route = call.resolved.route.name if call.resolved is not None else ""
    page, next_token = call.c.backend.page(items, call.query.get("$skiptoken"), top, route=route)
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
    # Spelt as the resource provider spells it (clients must match query names without case).
    url = f"{call.base_url}{op.url_path}?api-Version={urllib.parse.quote(call.api_version)}"
    return [
        (b"azure-asyncoperation", url.encode()),
        (b"operation-location", url.encode()),
        *_retry_after(call),
        (b"x-ms-async-operation-timeout", result.timeout.encode()),
    ]


def _retry_after(call: Call) -> list[tuple[bytes, bytes]]:
    """``Retry-After`` of an operation in progress; none for 0. azure-core treats 0 as absent
    (``LROBasePolling._extract_delay`` falls back to the client's ``polling_interval``, 30 s
    by default, when the delay is falsy), so a header of 0 would only mislead."""
    seconds = call.c.backend.options.retry_after
    return [(b"retry-after", str(seconds).encode())] if seconds else []


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


def get_provider(call: Call) -> Reply:
    return json_reply(200, call.c.backend.get_provider(_p(call, "sub"), _p(call, "namespace")))


def list_providers(call: Call) -> Reply:
    return _paged(call, call.c.backend.list_providers(_p(call, "sub")))


def _kc(call: Call, versions: Collection[str], rtype: str) -> str:
    """The api-version of a Microsoft.KubernetesConfiguration request, once ARM would route it:
    the subscription is registered for the namespace and the type serves the version."""
    sub = _p(call, "sub")
    if call.c.backend.registration_state(sub, KC_PROVIDER).lower() != "registered":
        raise MissingSubscriptionRegistration(
            f"The subscription '{sub}' is not registered to use namespace '{KC_PROVIDER}'. See "
            "https://aka.ms/rps-not-found for how to register subscriptions."
        )
    version = call.api_version
    if version not in versions:
        raise NoRegisteredProviderFound(
            f"No registered resource provider found for API version '{version}' for type "
            f"'{rtype}'. The supported api-versions are '{', '.join(sorted(versions))}'."
        )
    return version


def _catalog_scope(call: Call) -> str:
    """The id prefix of the extension types a catalogue route serves (subscription, location
    or cluster scope; the cluster must exist)."""
    r = call.resolved
    assert r is not None
    if "cluster" in r.params:
        cluster = call.c.backend.get_cluster(r.cluster)
        return f"{cluster['id']}/providers/{KC_PROVIDER}"
    scope = f"/subscriptions/{r.params['sub']}/providers/{KC_PROVIDER}"
    return f"{scope}/locations/{r.params['loc']}" if "loc" in r.params else scope


def extension_types(call: Call) -> Reply:
    _kc(call, CATALOG_VERSIONS[1:], "extensionTypes")
    return _paged(call, call.c.backend.extension_types(_p(call, "sub"), _catalog_scope(call)))


def extension_type(call: Call) -> Reply:
    _kc(call, CATALOG_VERSIONS[1:], "extensionTypes")
    found = call.c.backend.extension_type(_p(call, "sub"), _catalog_scope(call), _p(call, "ext"))
    return json_reply(200, found)


def extension_type_versions(call: Call) -> Reply:
    backend, sub, ext = call.c.backend, _p(call, "sub"), _p(call, "ext")
    assert call.resolved is not None
    location_scope = "loc" in call.resolved.params
    old = CATALOG_VERSIONS[0]
    version = _kc(call, CATALOG_VERSIONS if location_scope else CATALOG_VERSIONS[1:], ext)
    if version == old:
        return _paged(call, backend.list_extension_type_versions(sub, _p(call, "loc"), ext))
    scope = _catalog_scope(call)
    return _paged(call, backend.extension_type_versions(sub, scope, ext, call.query))


def extension_type_version(call: Call) -> Reply:
    _kc(call, CATALOG_VERSIONS[1:], "extensionTypes/versions")
    found = call.c.backend.extension_type_version(
        _p(call, "sub"), _catalog_scope(call), _p(call, "ext"), _p(call, "version")
    )
    return json_reply(200, found)


def list_children(call: Call) -> Reply:
    r = call.resolved
    assert r is not None
    version = _kc(call, RULES[r.kind].versions, r.kind)
    items = call.c.backend.list_children(r.cluster, r.kind)
    return _paged(call, [shapes.for_version(r.kind, res, version) for res in items])


def child(call: Call) -> Reply:
    """GET, PUT, PATCH and DELETE of an extension, flux or source control configuration."""
    r = call.resolved
    assert r is not None
    backend, name = call.c.backend, r.params["name"]
    version = _kc(call, RULES[r.kind].versions, r.kind)
    call.write.api_version = version
    if call.method == "GET":
        found = backend.get_child(r.cluster, r.kind, name)
        return json_reply(200, shapes.for_version(r.kind, found, version))
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
    return json_reply(result.status, shapes.for_version(r.kind, result.body, version), headers)


def get_operation(call: Call) -> Reply:
    r = call.resolved
    assert r is not None
    version = _kc(call, RULES[r.kind].versions, f"{r.kind}/operations")
    op = call.c.backend.get_operation(r.cluster, r.kind, r.params["name"], r.params["op"])
    headers = [] if op.terminal else _retry_after(call)
    return json_reply(200, shapes.operation_for_version(r.kind, op.to_json(), version), headers)


def list_operations(call: Call) -> Reply:
    assert call.resolved is not None
    _kc(call, _KC_VERSIONS, "operations")
    return _paged(call, call.c.backend.list_operations(call.resolved.cluster))


def rp_operations(call: Call) -> Reply:
    return _paged(call, RP_OPERATIONS)


def _maintenance_version(call: Call) -> None:
    if call.api_version not in MAINTENANCE_VERSIONS:
        raise NoRegisteredProviderFound(
            f"No registered resource provider found for API version '{call.api_version}' for "
            "type 'managedClusters/maintenanceConfigurations'. The supported api-versions are "
            f"'{', '.join(MAINTENANCE_VERSIONS)}'."
        )


def list_maintenance(call: Call) -> Reply:
    assert call.resolved is not None
    _maintenance_version(call)
    return _paged(call, call.c.backend.list_maintenance(call.resolved.cluster))


def maintenance_configuration(call: Call) -> Reply:
    """GET, PUT (synchronous, 200) and DELETE (200, or 204 when absent) of one configuration."""
    r = call.resolved
    assert r is not None
    _maintenance_version(call)
    backend, name = call.c.backend, r.params["name"]
    if call.method == "GET":
        return json_reply(200, backend.get_maintenance(r.cluster, name))
    if call.method == "PUT":
        return json_reply(
            200, backend.put_maintenance(r.cluster, name, call.json(), call.write.principal)
        )
    return Reply(200 if backend.delete_maintenance(r.cluster, name) else 204)


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
    "list_maintenance": list_maintenance,
    "maintenance_configuration": maintenance_configuration,
    "get_by_id": get_by_id,
    "get_provider": get_provider,
    "list_providers": list_providers,
    "extension_types": extension_types,
    "extension_type": extension_type,
    "extension_type_versions": extension_type_versions,
    "extension_type_version": extension_type_version,
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


def metadata_endpoints(base_url: str, query: Query) -> Reply:
    """``GET /metadata/endpoints``: the cloud's endpoints, with this emulator as its Resource
    Manager. From api-version 2019-05-01 on ARM answers a list of clouds, before that (and
    without api-version) one object."""
    cloud = {
        "name": "AzureCloud",
        "portal": "https://portal.azure.com",
        "authentication": {
            "loginEndpoint": "https://login.microsoftonline.com/",
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": "https://rest.media.azure.net",
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "resourceManager": f"{base_url}/",
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "gallery": "https://gallery.azure.com/",
        "suffixes": {
            "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
            "acrLoginServer": "azurecr.io",
            "sqlServerHostname": "database.windows.net",
            "keyVaultDns": "vault.azure.net",
            "storage": "core.windows.net",
        },
    }
    version = query.get("api-version") or ""
    return json_reply(200, [cloud] if version >= "2019-05-01" else cloud)

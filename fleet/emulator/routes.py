"""The URL table: which paths the emulator serves, with which methods, and what each one is.

Like moto's ``urls.py``: a list of anchored regular expressions with named groups, each naming
the handler of ``responses.py`` that serves it. ARM treats provider namespaces, resource types
and names case-insensitively (the spec samples mix ``connectedClusters`` and
``ConnectedClusters``), so every pattern matches ignoring case; the captured names keep the
caller's spelling.

Resolving a request also says what ARM would need to know before serving it: the throttling
bucket (subscription or tenant, reads/writes/deletes), the resource type for the statistics and
for fault matching, and the RBAC action (``Microsoft.KubernetesConfiguration/extensions/write``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleet.core.ids import CLUSTER_PROVIDERS, KC_PROVIDER
from fleet.emulator.errors import InvalidResourceType, MethodNotAllowed
from fleet.emulator.store import KINDS, ClusterRef

_S = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _S + r"/resourcegroups/(?P<rg>[^/]+)"
_CLUSTER_TYPE = (
    r"(?P<rp>microsoft\.containerservice|microsoft\.kubernetes)"
    r"/(?P<ctype>managedclusters|connectedclusters)"
)
_CL = _RG + r"/providers/" + _CLUSTER_TYPE + r"/(?P<cluster>[^/]+)"
_AKS = (
    _RG + r"/providers/(?P<rp>microsoft\.containerservice)/(?P<ctype>managedclusters)"
    r"/(?P<cluster>[^/]+)/maintenanceconfigurations"
)
_MAINTENANCE = "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"
_KC = _CL + r"/providers/microsoft\.kubernetesconfiguration"
_KIND = r"(?P<kind>extensions|fluxconfigurations|sourcecontrolconfigurations)"
_KCP = r"/providers/microsoft\.kubernetesconfiguration"
_TYPES = r"/extensiontypes"
_PROV = "Microsoft.Resources/subscriptions/providers"
_CANONICAL_CLUSTER = {v.lower(): v for v in CLUSTER_PROVIDERS.values()}

GET = frozenset({"GET"})
CHILD_METHODS = frozenset({"GET", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    #: "subscription", "tenant" (throttled per tenant) or "graph" (Resource Graph quota).
    scope: str
    #: The resource type for statistics, faults and RBAC; "{kind}"/"{cluster}" are filled in.
    resource_type: str


def _route(name: str, pattern: str, methods: frozenset[str], scope: str, rtype: str) -> Route:
    return Route(name, re.compile(f"^{pattern}$", re.IGNORECASE), methods, scope, rtype)


ROUTES: tuple[Route, ...] = (
    # The hot paths first: children of clusters and their operations.
    _route(
        "child", _KC + "/" + _KIND + r"/(?P<name>[^/]+)", CHILD_METHODS, "subscription", "{kind}"
    ),
    _route(
        "get_operation",
        _KC + "/" + _KIND + r"/(?P<name>[^/]+)/operations/(?P<op>[^/]+)",
        GET,
        "subscription",
        "{kind}/operations",
    ),
    _route("list_children", _KC + "/" + _KIND, GET, "subscription", "{kind}"),
    _route(
        "list_operations", _KC + "/operations", GET, "subscription", f"{KC_PROVIDER}/operations"
    ),
    _route("get_cluster", _CL, GET, "subscription", "{cluster}"),
    _route(
        "maintenance_configuration",
        _AKS + r"/(?P<name>[^/]+)",
        frozenset({"GET", "PUT", "DELETE"}),
        "subscription",
        _MAINTENANCE,
    ),
    _route("list_maintenance", _AKS, GET, "subscription", _MAINTENANCE),
    _route(
        "graph",
        r"/providers/microsoft\.resourcegraph/resources",
        frozenset({"POST"}),
        "graph",
        "Microsoft.ResourceGraph/resources",
    ),
    _route(
        "list_subscriptions", r"/subscriptions", GET, "tenant", "Microsoft.Resources/subscriptions"
    ),
    _route("get_subscription", _S, GET, "subscription", "Microsoft.Resources/subscriptions"),
    _route(
        "list_resource_groups",
        _S + "/resourcegroups",
        GET,
        "subscription",
        "Microsoft.Resources/subscriptions/resourceGroups",
    ),
    _route(
        "get_resource_group",
        _RG,
        GET,
        "subscription",
        "Microsoft.Resources/subscriptions/resourceGroups",
    ),
    _route(
        "list_resources",
        _S + "/resources",
        GET,
        "subscription",
        "Microsoft.Resources/subscriptions/resources",
    ),
    _route(
        "list_resources",
        _RG + "/resources",
        GET,
        "subscription",
        "Microsoft.Resources/subscriptions/resources",
    ),
    _route("list_clusters", _S + "/providers/" + _CLUSTER_TYPE, GET, "subscription", "{cluster}"),
    _route("list_clusters", _RG + "/providers/" + _CLUSTER_TYPE, GET, "subscription", "{cluster}"),
    # The extension type catalogue, at subscription, location and cluster scope.
    *(
        _route(name, scope + _TYPES + tail, GET, "subscription", f"{KC_PROVIDER}/{rtype}")
        for scope in (_S + _KCP, _S + _KCP + r"/locations/(?P<loc>[^/]+)", _KC)
        for name, tail, rtype in (
            ("extension_types", "", "extensionTypes"),
            ("extension_type", r"/(?P<ext>[^/]+)", "extensionTypes"),
            ("extension_type_versions", r"/(?P<ext>[^/]+)/versions", "extensionTypes/versions"),
            (
                "extension_type_version",
                r"/(?P<ext>[^/]+)/versions/(?P<version>[^/]+)",
                "extensionTypes/versions",
            ),
        )
    ),
    _route("get_provider", _S + r"/providers/(?P<namespace>[^/]+)", GET, "subscription", _PROV),
    _route("list_providers", _S + r"/providers", GET, "subscription", _PROV),
    _route(
        "rp_operations",
        r"/providers/microsoft\.kubernetesconfiguration/operations",
        GET,
        "tenant",
        f"{KC_PROVIDER}/operations",
    ),
    _route("list_tenants", r"/tenants", GET, "tenant", "Microsoft.Resources/tenants"),
    # Any other resource of the snapshot by id (resources.get_by_id), last.
    _route("get_by_id", _RG + r"/providers/[^/]+/.+", GET, "subscription", "{generic}"),
)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A request matched to a route, with what throttling, faults and RBAC need."""

    route: Route
    params: dict[str, str]
    resource_type: str
    action: str
    op_class: str  # reads | writes | deletes
    subscription: str | None

    @property
    def cluster(self) -> ClusterRef:
        p = self.params
        return ClusterRef(p["sub"], p["rg"], p["rp"], p["ctype"], p["cluster"])

    @property
    def kind(self) -> str:
        return KINDS[self.params["kind"].lower()]


def normalize(path: str) -> str:
    """Collapse empty segments (``resources.get`` with an empty parent path sends ``//``)."""
    if "//" in path:
        path = re.sub(r"/{2,}", "/", path)
    return path.rstrip("/") or "/"


def resolve(method: str, path: str) -> Resolved:
    """Match a request; raises ``InvalidResourceType`` (404) or ``MethodNotAllowed`` (405)."""
    for route in ROUTES:
        m = route.pattern.match(path)
        if m is None:
            continue
        if method not in route.methods:
            raise MethodNotAllowed(
                f"The requested resource does not support http method '{method}'."
            )
        params = {k: v for k, v in m.groupdict().items() if v is not None}
        rtype = route.resource_type
        if "{kind}" in rtype:
            rtype = rtype.replace("{kind}", f"{KC_PROVIDER}/{KINDS[params['kind'].lower()]}")
        elif rtype == "{cluster}":
            rtype = _CANONICAL_CLUSTER.get(
                f"{params['rp']}/{params['ctype']}".lower(), f"{params['rp']}/{params['ctype']}"
            )
        elif rtype == "{generic}":
            rtype = _generic_type(path)
        if method in ("GET", "HEAD"):
            op_class, verb = "reads", "read"
        elif method == "DELETE":
            op_class, verb = "deletes", "delete"
        else:
            op_class, verb = "writes", "write"
        if route.name == "graph":
            verb = "read"
        action = f"{rtype}/{verb}"
        sub = params.get("sub") if route.scope == "subscription" else None
        return Resolved(route, params, rtype, action, op_class, sub)
    raise InvalidResourceType(
        f"The emulator does not serve '{method} {path}'. The supported routes are listed in "
        "docs/emulator.md."
    )


def _generic_type(path: str) -> str:
    parts = path.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    idx = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = parts[idx + 1 :]
    return "/".join([rest[0], *rest[1::2]]) if len(rest) >= 2 else "unknown"

"""Resource reads: what ARM answers to GETs and lists, and the rows Resource Graph sees.

Subscriptions, tenants, resource groups, the generic resource list (with ``$filter`` and
``$expand``), ``GET /{resourceId}``, clusters, a cluster's Microsoft.KubernetesConfiguration
children and their operations, and the rows of the Resource Graph tables (the extension type
catalogue is catalog.py's). Lists come back whole; ``page`` cuts one page out of them for the
HTTP layer, at the size Azure pages that list by (``AZURE_PAGE_SIZES``) unless the options set
one size for every list.

Reads change nothing but what time has settled (``tick``) and the poll count of an operation
(a status poll is what moves an operation along).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from fleet.core.ids import KC_PROVIDER
from fleet.emulator import errors as e
from fleet.emulator.catalog import CATALOG_VERSIONS
from fleet.emulator.lro import Lro, Operation
from fleet.emulator.odata_filter import filter_fields, parse_resource_filter
from fleet.emulator.rules import RULES
from fleet.emulator.snapshot import KC_TYPES, RESOURCE_GROUPS, resource_type_of
from fleet.emulator.store import ClusterRef, key_of, subscription_of

#: Top-level fields of an item of the generic resource list (ARM leaves ``properties`` out).
_LIST_FIELDS = (
    "id",
    "name",
    "type",
    "kind",
    "location",
    "managedBy",
    "sku",
    "plan",
    "identity",
    "tags",
    "extendedLocation",
    "zones",
)

#: The resource providers ``GET /subscriptions/{s}/providers[/{namespace}]`` describes, with
#: the api-versions the emulator serves for each resource type.
_PROVIDERS: dict[str, dict[str, tuple[str, ...]]] = {
    "Microsoft.KubernetesConfiguration": {
        **{kind: tuple(rules.versions) for kind, rules in RULES.items()},
        "extensionTypes": CATALOG_VERSIONS,
        "operations": tuple(sorted({v for r in RULES.values() for v in r.versions})),
    },
    "Microsoft.ContainerService": {"managedClusters": ("2024-05-01",)},
    "Microsoft.Kubernetes": {"connectedClusters": ("2024-01-01",)},
    "Microsoft.ResourceGraph": {"resources": ("2022-10-01", "2021-03-01")},
}
_LOCATIONS = ("West Europe", "North Europe", "East US", "West US 2")

#: Items per page of each ARM list (by route name, ``routes.py``) as Azure returns them, when
#: ``EmulatorOptions.page_size`` is None. docs/emulator.md (Paging) gives the source of each;
#: where no source states a size, ``AZURE_PAGE_SIZE`` is the value chosen and said so there.
AZURE_PAGE_SIZES: dict[str, int] = {"list_tenants": 50, "list_subscriptions": 50}
AZURE_PAGE_SIZE = 100


def page_of(
    items: list[Any], skip_token: str | None, top: int | None, size: int
) -> tuple[list[Any], str | None]:
    """One page of ``size`` items of a list (its first ``top``, if given) and the
    ``$skiptoken`` of the next page (None on the last page)."""
    offset = 0
    if skip_token:
        if not skip_token.isdigit():
            raise e.InvalidSkipToken("The $skiptoken is not valid.")
        offset = int(skip_token)
    if top is not None:
        items = items[:top]
    end = offset + size
    return items[offset:end], (str(end) if end < len(items) else None)


class Reads(Lro):
    """The read side of the emulated ARM."""

    def page(
        self,
        items: list[Any],
        skip_token: str | None,
        top: int | None = None,
        *,
        route: str = "",
    ) -> tuple[list[Any], str | None]:
        """One page of the ARM list served by ``route``: at the configured page size, else at
        the size Azure pages that list by."""
        size = self.options.page_size or AZURE_PAGE_SIZES.get(route, AZURE_PAGE_SIZE)
        return page_of(items, skip_token, top, size)

    def tenant_of(self, sub: Mapping[str, Any]) -> str:
        return str(sub.get("tenantId") or self.options.tenant_id)

    # ------------------------------------------------------------------ subscriptions, groups

    def list_subscriptions(self) -> list[dict[str, Any]]:
        return [self._subscription_json(s) for s in self._subs.values()]

    def get_subscription(self, sub: str) -> dict[str, Any]:
        return self._subscription_json(self._subscription(sub))

    def _subscription_json(self, sub: Mapping[str, Any]) -> dict[str, Any]:
        sid = str(sub["subscriptionId"])
        return {
            "id": f"/subscriptions/{sid}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": sid,
            "tenantId": self.tenant_of(sub),
            "displayName": str(sub.get("displayName") or sid),
            "state": str(sub.get("state") or "Enabled"),
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }

    def list_tenants(self) -> list[dict[str, Any]]:
        tenants = dict.fromkeys(self.tenant_of(s) for s in self._subs.values()) or {
            self.options.tenant_id: None
        }
        return [{"id": f"/tenants/{t}", "tenantId": t, "tenantCategory": "Home"} for t in tenants]

    # ------------------------------------------------------------------ resource providers

    def registration_state(self, sub: str, namespace: str) -> str:
        """A provider namespace's ``registrationState`` in a subscription: what the snapshot's
        ``subscriptions[].providers`` says, else ``Registered``."""
        states: Mapping[str, Any] = self._subscription(sub).get("providers") or {}
        wanted = namespace.lower()
        return next((str(v) for k, v in states.items() if k.lower() == wanted), "Registered")

    def get_provider(self, sub: str, namespace: str) -> dict[str, Any]:
        """``GET /subscriptions/{s}/providers/{namespace}`` (``providers.get``)."""
        canonical = next((n for n in _PROVIDERS if n.lower() == namespace.lower()), None)
        if canonical is None:
            self._subscription(sub)
            raise e.InvalidResourceNamespace(f"The resource namespace '{namespace}' is invalid.")
        return {
            "id": f"/subscriptions/{sub}/providers/{canonical}",
            "namespace": canonical,
            "registrationState": self.registration_state(sub, canonical),
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [
                {"resourceType": rtype, "locations": list(_LOCATIONS), "apiVersions": list(vs)}
                for rtype, vs in _PROVIDERS[canonical].items()
            ],
        }

    def list_providers(self, sub: str) -> list[dict[str, Any]]:
        return [self.get_provider(sub, n) for n in _PROVIDERS]

    def list_resource_groups(self, sub: str, odata_filter: str | None) -> list[dict[str, Any]]:
        prefix = self._scope(sub, None)
        if odata_filter:
            raise e.InvalidFilterInQueryString(
                "The emulator does not support $filter on resource group lists."
            )
        return [_group_json(g) for k, g in self._groups.items() if k.startswith(prefix)]

    def get_resource_group(self, sub: str, rg: str) -> dict[str, Any]:
        return _group_json(self._group(sub, rg))

    # ------------------------------------------------------------------ resources, clusters

    def list_resources(
        self, sub: str, rg: str | None, odata_filter: str | None, expand: str | None
    ) -> list[dict[str, Any]]:
        """``GET /subscriptions/{s}[/resourceGroups/{rg}]/resources``.

        Like ARM, the items carry no ``properties``: inventories GET each cluster or use Graph.
        """
        prefix = self._scope(sub, rg)
        predicate = parse_resource_filter(odata_filter) if odata_filter else None
        want_state = expand is not None and "provisioningstate" in expand.lower()
        out: list[dict[str, Any]] = []
        for key, res in self._resources.items():
            rtype = str(res["type"]).lower()
            if not key.startswith(prefix) or rtype == RESOURCE_GROUPS or rtype in KC_TYPES:
                continue
            if predicate is not None and not predicate(filter_fields(res)):
                continue
            item = {k: res[k] for k in _LIST_FIELDS if res.get(k) is not None}
            if want_state:
                props = res.get("properties") or {}
                item["provisioningState"] = props.get("provisioningState", "Succeeded")
            out.append(item)
        return out

    def get_by_id(self, path: str) -> dict[str, Any]:
        """Generic ``GET /{resourceId}`` for any stored resource (clusters and others)."""
        res = self._resources.get(key_of(path))
        if res is None or str(res["type"]).lower() in KC_TYPES:
            implied = resource_type_of(path)
            parts = path.strip("/").split("/")
            if len(parts) >= 4:
                self._group(parts[1], parts[3])
            what = f"{implied[0]}/{implied[1]}" if implied else path
            raise e.ResourceNotFound(
                f"The Resource '{what}' under resource group '{parts[3] if len(parts) > 3 else ''}'"
                " was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            )
        if str(res["type"]).lower() == RESOURCE_GROUPS:
            return _group_json(res)
        return res

    def get_cluster(self, ref: ClusterRef) -> dict[str, Any]:
        return self._cluster(ref, nested=False)

    def list_clusters(
        self, sub: str, rg: str | None, provider: str, ctype: str
    ) -> list[dict[str, Any]]:
        prefix = self._scope(sub, rg)
        wanted = f"{provider}/{ctype}".lower()
        return [
            c
            for k, c in self._clusters.items()
            if k.startswith(prefix) and str(c["type"]).lower() == wanted
        ]

    # ------------------------------------------------------------------ KubernetesConfiguration

    def list_children(self, ref: ClusterRef, kind: str) -> list[dict[str, Any]]:
        cluster = self._cluster(ref, nested=True)
        return [self._resources[k] for k in self._child_keys(cluster, kind).values()]

    def get_child(self, ref: ClusterRef, kind: str, name: str) -> dict[str, Any]:
        return self._child(ref, kind, name)[1]

    def get_operation(self, ref: ClusterRef, kind: str, name: str, op_id: str) -> Operation:
        """One operation-status poll: counts the poll and may finish the operation."""
        cluster = self._cluster(ref, nested=True)
        op = self._ops.get(op_id.lower())
        expected = (
            f"{key_of(cluster['id'])}/providers/{KC_PROVIDER.lower()}/{kind.lower()}/{name.lower()}"
        )
        if op is None or op.resource_key != expected:
            raise e.ResourceNotFound(f"The async operation '{op_id}' was not found.")
        self._poll(op)
        return op

    def list_operations(self, ref: ClusterRef) -> list[dict[str, Any]]:
        """The operations in progress on a cluster (``OperationStatus_List``)."""
        cluster = self._cluster(ref, nested=True)
        ckey = key_of(cluster["id"])
        return [
            op.to_json() for op in self._ops.values() if op.cluster_key == ckey and not op.terminal
        ]

    # ------------------------------------------------------------------ Resource Graph

    def graph_rows(
        self, table: str, scope: Collection[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Rows of an ARG table (``type`` and ``resourceGroup`` lower-case, as ARG has them).

        ``scope``: lower-cased subscription ids; rows of other subscriptions are skipped
        before they are built (a query scoped to one subscription of a 100,000-cluster fleet
        then costs what that subscription holds).
        """
        self.tick()
        for res in self._resources.values():
            if scope is not None and subscription_of(res["id"]) not in scope:
                continue
            rtype = str(res["type"]).lower()
            if table == "resources" and (rtype in KC_TYPES or rtype == RESOURCE_GROUPS):
                continue
            if table == "kubernetesconfigurationresources" and rtype not in KC_TYPES:
                continue
            if table == "resourcecontainers":
                if rtype != RESOURCE_GROUPS:
                    continue
                rtype = "microsoft.resources/subscriptions/resourcegroups"
            parts = str(res["id"]).strip("/").split("/")
            sub = self._subs.get(parts[1].lower(), {})
            yield {
                "id": res["id"],
                "name": res["name"],
                "type": rtype,
                "tenantId": self.tenant_of(sub) if sub else self.options.tenant_id,
                "kind": res.get("kind", ""),
                "location": res.get("location", ""),
                "resourceGroup": parts[3].lower(),
                "subscriptionId": parts[1],
                "managedBy": res.get("managedBy", ""),
                "sku": res.get("sku"),
                "plan": res.get("plan"),
                "properties": res.get("properties") or {},
                "tags": res.get("tags") or {},
                "identity": res.get("identity"),
                "zones": res.get("zones"),
                "extendedLocation": res.get("extendedLocation"),
            }
        if table == "resourcecontainers":
            for sub in self._subs.values():
                sid = str(sub["subscriptionId"])
                if scope is not None and sid.lower() not in scope:
                    continue
                yield {
                    "id": f"/subscriptions/{sid}",
                    "name": str(sub.get("displayName") or sid),
                    "type": "microsoft.resources/subscriptions",
                    "tenantId": self.tenant_of(sub),
                    "kind": "",
                    "location": "",
                    "resourceGroup": "",
                    "subscriptionId": sid,
                    "managedBy": "",
                    "sku": None,
                    "plan": None,
                    "properties": {"state": str(sub.get("state") or "Enabled")},
                    "tags": {},
                    "identity": None,
                    "zones": None,
                    "extendedLocation": None,
                }


def _group_json(group: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": group["id"],
        "name": group["name"],
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.get("location", ""),
    }
    if group.get("tags"):
        out["tags"] = group["tags"]
    if group.get("managedBy"):
        out["managedBy"] = group["managedBy"]
    out["properties"] = {"provisioningState": "Succeeded"}
    return out

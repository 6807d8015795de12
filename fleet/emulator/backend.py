"""The emulated Azure: in-memory state from a snapshot, the LRO machine, the clock, the rules.

``Backend`` holds the resources of a fleet snapshot and answers what ARM and the
Microsoft.KubernetesConfiguration resource provider would: reads, PUT/PATCH/DELETE with
long-running operations, lists, Resource Graph rows. It knows nothing of HTTP (responses.py
turns its results into responses) and is only ever called from the server's event-loop thread,
so it needs no locks.

Behaviours that mirror Azure (docs/emulator.md has the full table and the error codes):

- a fluxConfigurations PUT on a cluster without the microsoft.flux extension installs one
  named ``flux`` first (newest Stable version);
- installing microsoft.flux fails while Flux v1 sourceControlConfigurations exist, and on ARM64
  clusters for versions below 1.7.0;
- stopped AKS clusters refuse extension and flux writes (409 ``OperationNotAllowed``);
- writes to Arc clusters that are not ``Connected`` stay in progress and fail after 48 h of
  emulated time (or proceed once the cluster is connected again);
- flux configurations go ``Pending`` and then ``Compliant`` (``Non-Compliant`` for failing
  sources) after their operation; extensions get ``currentVersion`` from the catalogue and
  auto-upgrade when it changes.

Time is emulated: ``Clock`` is real UTC plus an offset that ``/_emulator/clock`` moves, so a test
can let 48 hours pass instantly. Due work (operations that finish by time, configurations that
finish reconciling) sits in a heap and is settled lazily by ``tick()`` at the start of each
request.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import itertools
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.core.clusters import is_arm64
from fleet.core.ids import CLUSTER_PROVIDERS, KC_PROVIDER, cluster_type_of
from fleet.emulator import errors as e
from fleet.emulator.errors import LroError
from fleet.emulator.options import EmulatorOptions
from fleet.emulator.snapshot import (
    CLUSTER_TYPES,
    KC_TYPES,
    RESOURCE_GROUPS,
    redact,
    resource_type_of,
)
from fleet.emulator.stats import Stats

FLUX_TYPE = "microsoft.flux"
ARC_TIMEOUT = timedelta(hours=48)
ARM64_MIN_FLUX = (1, 7, 0)
#: Canonical child collection segment, keyed by its lower-case spelling.
KINDS = {
    "extensions": "extensions",
    "fluxconfigurations": "fluxConfigurations",
    "sourcecontrolconfigurations": "sourceControlConfigurations",
}
_IN_PROGRESS = {"create": "Creating", "update": "Updating", "delete": "Deleting"}
_TERMINAL = frozenset({"Succeeded", "Failed", "Canceled"})
#: Child kinds by their lower-cased name (as dumped operations spell them).
_KINDS = {k.lower(): k for k in ("extensions", "fluxConfigurations", "sourceControlConfigurations")}
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_FLUX_PATCHABLE = frozenset(
    {
        "sourceKind",
        "suspend",
        "gitRepository",
        "bucket",
        "azureBlob",
        "kustomizations",
        "configurationProtectedSettings",
    }
)
_EXT_PATCHABLE = frozenset(
    {
        "autoUpgradeMinorVersion",
        "releaseTrain",
        "version",
        "configurationSettings",
        "configurationProtectedSettings",
    }
)
_FLUX_READONLY = frozenset(
    {
        "statuses",
        "repositoryPublicKey",
        "sourceSyncedCommitId",
        "sourceUpdatedAt",
        "statusUpdatedAt",
        "complianceState",
        "provisioningState",
        "errorMessage",
    }
)
_EXT_READONLY = frozenset(
    {
        "currentVersion",
        "provisioningState",
        "statuses",
        "errorInfo",
        "customLocationSettings",
        "packageUri",
        "isSystemExtension",
    }
)
_SCC_READONLY = frozenset({"repositoryPublicKey", "provisioningState", "complianceStatus"})
_SOURCE_KEYS = {"GitRepository": "gitRepository", "Bucket": "bucket", "AzureBlob": "azureBlob"}


# --------------------------------------------------------------------------- time


def iso(moment: datetime) -> str:
    """ARM's timestamp format (UTC, 'Z')."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Clock:
    """Emulated UTC time: the real clock plus an offset that only moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def timestamp(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulated clock only moves forward")
        self.offset += seconds

    def set(self, moment: datetime) -> None:
        target = moment.timestamp() - datetime.now(UTC).timestamp()
        if target < self.offset:
            raise ValueError("the emulated clock only moves forward")
        self.offset = target

    def to_json(self) -> dict[str, Any]:
        return {"now": iso(self.now()), "offsetSeconds": self.offset}


# --------------------------------------------------------------------------- values


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Sort key of ``1.17.3`` / ``1.18.0-preview.1``: a pre-release sorts below its release."""
    main, _, pre = version.partition("-")
    nums = tuple(int(p) if p.isdigit() else 0 for p in main.split("."))
    return nums, 0 if pre else 1, pre


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` deletes, others replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _key(resource_id: str) -> str:
    return resource_id.rstrip("/").lower()


def _subscription_of(resource_id: str) -> str:
    """The lower-cased subscription id of ``/subscriptions/{s}/...``."""
    return resource_id.split("/", 3)[2].lower()


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class ClusterRef:
    """A cluster as addressed by a URL (any case)."""

    subscription: str
    resource_group: str
    provider: str
    cluster_type: str
    name: str

    @property
    def key(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group}"
            f"/providers/{self.provider}/{self.cluster_type}/{self.name}"
        ).lower()


@dataclass(slots=True)
class WriteContext:
    """Who writes, and what faults the server attached to this write."""

    principal: str
    identity_type: str = "Application"
    authorize: Callable[[str, str], None] = lambda action, scope: None
    lro_error: LroError | None = None
    non_compliant: bool = False


@dataclass(slots=True)
class Operation:
    """An async operation (Azure-AsyncOperation resource) of one resource."""

    id: str
    resource_key: str
    resource_id: str
    cluster_key: str
    kind: str
    action: str  # create | update | delete
    status: str
    start: datetime
    polls_left: int | None
    due: datetime | None
    error: LroError | None  # the outcome decided when the write was accepted
    blocked: bool
    non_compliant: bool = False
    end: datetime | None = None
    failure: LroError | None = None  # the error it actually ended with
    linked: list[Operation] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in _TERMINAL

    @property
    def url_path(self) -> str:
        return f"{self.resource_id}/operations/{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.url_path,
            "name": self.id,
            "status": self.status,
            "startTime": iso(self.start),
            "endTime": iso(self.end) if self.end else None,
            "properties": {},
            "error": self.failure.to_json() if self.failure else None,
        }


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write answers: status, body (None for no body) and the operation it started."""

    status: int
    body: dict[str, Any] | None
    operation: Operation | None = None
    timeout: str = "PT48H"


@dataclass(slots=True)
class _Meta:
    """Per-resource state that is not part of the resource (never dumped)."""

    generation: int = 0
    operation: Operation | None = None
    compliance: str | None = None  # the state a reconcile in progress will end in


# --------------------------------------------------------------------------- the backend


class Backend:
    """In-memory ARM for one fleet snapshot."""

    def __init__(
        self,
        snapshot: Mapping[str, Any],
        options: EmulatorOptions | None = None,
        *,
        stats: Stats | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.options = options or EmulatorOptions()
        self.stats = stats or Stats()
        self.clock = clock or Clock()
        # The document as loaded: top-level keys in order, unknown keys kept for the dump.
        self._doc: dict[str, Any] = dict(snapshot)
        self._subs: dict[str, dict[str, Any]] = {}
        self._resources: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, dict[str, Any]] = {}
        self._clusters: dict[str, dict[str, Any]] = {}
        self._children: dict[str, dict[str, dict[str, str]]] = {}
        self._meta: dict[str, _Meta] = {}
        self._ops: dict[str, Operation] = {}
        self._finished_ops: list[str] = []
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._catalog: dict[str, dict[str, list[str]]] = {}
        emulator = snapshot.get("emulator") or {}
        self.failing_sources: set[str] = {
            _norm_url(u) for u in emulator.get("failingSources") or ()
        }
        for sub in snapshot.get("subscriptions") or ():
            self._subs[str(sub["subscriptionId"]).lower()] = sub
        self._set_catalog(snapshot.get("extensionTypeVersions") or {})
        for resource in snapshot.get("resources") or ():
            self._index(resource)
        self._restore(emulator.get("operations") or (), emulator.get("reconciling") or ())

    # ------------------------------------------------------------------ indexing

    def _index(self, resource: dict[str, Any]) -> None:
        key = _key(resource["id"])
        self._resources[key] = resource
        rtype = str(resource["type"]).lower()
        if rtype == RESOURCE_GROUPS:
            self._groups[key] = resource
        elif rtype in CLUSTER_TYPES:
            self._clusters[key] = resource
        elif rtype in KC_TYPES:
            cluster_key, kind, name = self._split_child(key)
            self._children.setdefault(cluster_key, {}).setdefault(kind, {})[name] = key

    def _unindex(self, key: str) -> None:
        resource = self._resources.pop(key, None)
        self._meta.pop(key, None)
        if resource is None:
            return
        rtype = str(resource["type"]).lower()
        self._groups.pop(key, None)
        self._clusters.pop(key, None)
        if rtype in KC_TYPES:
            cluster_key, kind, name = self._split_child(key)
            self._children.get(cluster_key, {}).get(kind, {}).pop(name, None)

    @staticmethod
    def _split_child(key: str) -> tuple[str, str, str]:
        marker = f"/providers/{KC_PROVIDER.lower()}/"
        idx = key.rfind(marker)
        kind, name = key[idx + len(marker) :].split("/")[:2]
        return key[:idx], KINDS[kind], name

    def _set_catalog(self, catalog: Mapping[str, Any]) -> None:
        self._catalog = {
            str(t).lower(): {str(train).lower(): list(vs) for train, vs in trains.items()}
            for t, trains in catalog.items()
        }

    # ------------------------------------------------------------------ time and due work

    def _push(self, when: datetime, kind: str, ref: Any) -> None:
        heapq.heappush(self._heap, (when.timestamp(), next(self._seq), kind, ref))

    def tick(self) -> None:
        """Settle every piece of work whose emulated time has come."""
        if not self._heap:
            return
        now_ts = self.clock.timestamp()
        while self._heap and self._heap[0][0] <= now_ts:
            _, _, kind, ref = heapq.heappop(self._heap)
            if kind == "op":
                op: Operation = ref
                if op.terminal:
                    continue
                if op.blocked:
                    if now_ts >= (op.start + ARC_TIMEOUT).timestamp():
                        self._finish(
                            op,
                            LroError(
                                e.OPERATION_TIMED_OUT,
                                "The cluster has not been connected to Azure for 48 hours: the "
                                "pending change timed out and must be applied again.",
                            ),
                        )
                elif op.due is not None and now_ts >= op.due.timestamp():
                    self._finish(op, op.error)
            elif kind == "reconcile":
                key, generation = ref
                meta = self._meta.get(key)
                if meta is not None and meta.generation == generation and meta.compliance:
                    self._settle_compliance(key, meta)

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.tick()

    def set_clock(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.tick()

    # ------------------------------------------------------------------ lookups

    def _subscription(self, sub: str) -> dict[str, Any]:
        found = self._subs.get(sub.lower())
        if found is None:
            raise e.SubscriptionNotFound(f"The subscription '{sub}' could not be found.")
        return found

    def _group(self, sub: str, rg: str) -> dict[str, Any]:
        self._subscription(sub)
        found = self._groups.get(f"/subscriptions/{sub}/resourcegroups/{rg}".lower())
        if found is None:
            raise e.ResourceGroupNotFound(f"Resource group '{rg}' could not be found.")
        return found

    def _cluster(self, ref: ClusterRef, *, nested: bool) -> dict[str, Any]:
        found = self._clusters.get(ref.key)
        if found is not None:
            return found
        self._group(ref.subscription, ref.resource_group)
        if nested:
            raise e.ParentResourceNotFound(
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{ref.name}' not found."
            )
        raise e.ResourceNotFound(
            f"The Resource '{ref.provider}/{ref.cluster_type}/{ref.name}' under resource group "
            f"'{ref.resource_group}' was not found. For more details please go to "
            "https://aka.ms/ARMResourceNotFoundFix"
        )

    def _child_key(self, cluster: Mapping[str, Any], kind: str, name: str) -> str | None:
        return self._children.get(_key(cluster["id"]), {}).get(kind, {}).get(name.lower())

    def _child(
        self, ref: ClusterRef, kind: str, name: str
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        cluster = self._cluster(ref, nested=True)
        key = self._child_key(cluster, kind, name)
        if key is None:
            raise e.ResourceNotFound(
                f"The Resource '{KC_PROVIDER}/{kind}/{name}' under resource group "
                f"'{ref.resource_group}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix"
            )
        return cluster, key, self._resources[key]

    def _meta_of(self, key: str) -> _Meta:
        meta = self._meta.get(key)
        if meta is None:
            meta = self._meta[key] = _Meta()
        return meta

    def tenant_of(self, sub: Mapping[str, Any]) -> str:
        return str(sub.get("tenantId") or self.options.tenant_id)

    # ------------------------------------------------------------------ ARM: subscriptions, groups

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

    def list_resource_groups(self, sub: str, odata_filter: str | None) -> list[dict[str, Any]]:
        self._subscription(sub)
        if odata_filter:
            raise e.InvalidFilterInQueryString(
                "The emulator does not support $filter on resource group lists."
            )
        prefix = f"/subscriptions/{sub}/".lower()
        return [self._group_json(g) for k, g in self._groups.items() if k.startswith(prefix)]

    def get_resource_group(self, sub: str, rg: str) -> dict[str, Any]:
        return self._group_json(self._group(sub, rg))

    @staticmethod
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

    def list_resources(
        self, sub: str, rg: str | None, odata_filter: str | None, expand: str | None
    ) -> list[dict[str, Any]]:
        """``GET /subscriptions/{s}[/resourceGroups/{rg}]/resources``.

        Like ARM, the items carry no ``properties``: inventories GET each cluster or use Graph.
        """
        if rg is None:
            self._subscription(sub)
            prefix = f"/subscriptions/{sub}/".lower()
        else:
            self._group(sub, rg)
            prefix = f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()
        predicate = parse_resource_filter(odata_filter) if odata_filter else None
        want_state = expand is not None and "provisioningstate" in expand.lower()
        out: list[dict[str, Any]] = []
        for key, res in self._resources.items():
            rtype = str(res["type"]).lower()
            if not key.startswith(prefix) or rtype == RESOURCE_GROUPS or rtype in KC_TYPES:
                continue
            if predicate is not None and not predicate(_filter_fields(res)):
                continue
            item = {
                k: res[k]
                for k in (
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
                if res.get(k) is not None
            }
            if want_state:
                props = res.get("properties") or {}
                item["provisioningState"] = props.get("provisioningState", "Succeeded")
            out.append(item)
        return out

    def get_by_id(self, path: str) -> dict[str, Any]:
        """Generic ``GET /{resourceId}`` for any stored resource (clusters and others)."""
        key = _key(path)
        res = self._resources.get(key)
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
            return self._group_json(res)
        return res

    def get_cluster(self, ref: ClusterRef) -> dict[str, Any]:
        return self._cluster(ref, nested=False)

    def list_clusters(
        self, sub: str, rg: str | None, provider: str, ctype: str
    ) -> list[dict[str, Any]]:
        if rg is None:
            self._subscription(sub)
            prefix = f"/subscriptions/{sub}/".lower()
        else:
            self._group(sub, rg)
            prefix = f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()
        wanted = f"{provider}/{ctype}".lower()
        return [
            c
            for k, c in self._clusters.items()
            if k.startswith(prefix) and str(c["type"]).lower() == wanted
        ]

    # ------------------------------------------------------------------ KC: reads

    def list_children(self, ref: ClusterRef, kind: str) -> list[dict[str, Any]]:
        cluster = self._cluster(ref, nested=True)
        keys = self._children.get(_key(cluster["id"]), {}).get(kind, {})
        return [self._resources[k] for k in keys.values()]

    def get_child(self, ref: ClusterRef, kind: str, name: str) -> dict[str, Any]:
        return self._child(ref, kind, name)[2]

    def get_operation(self, ref: ClusterRef, kind: str, name: str, op_id: str) -> Operation:
        """One operation-status poll: counts the poll and may finish the operation."""
        cluster = self._cluster(ref, nested=True)
        op = self._ops.get(op_id.lower())
        expected = (
            f"{_key(cluster['id'])}/providers/{KC_PROVIDER.lower()}/{kind.lower()}/{name.lower()}"
        )
        if op is None or op.resource_key != expected:
            raise e.ResourceNotFound(f"The async operation '{op_id}' was not found.")
        if not op.terminal and not op.blocked and op.polls_left is not None:
            if op.polls_left > 0:
                op.polls_left -= 1
            else:
                self._finish(op, op.error)
        return op

    def list_operations(self, ref: ClusterRef) -> list[dict[str, Any]]:
        """The operations in progress on a cluster (``OperationStatus_List``)."""
        cluster = self._cluster(ref, nested=True)
        ckey = _key(cluster["id"])
        return [
            op.to_json() for op in self._ops.values() if op.cluster_key == ckey and not op.terminal
        ]

    def list_extension_type_versions(
        self, sub: str, location: str, ext_type: str
    ) -> list[dict[str, Any]]:
        self._subscription(sub)
        trains = self._catalog.get(ext_type.lower())
        if trains is None:
            raise e.ResourceNotFound(
                f"Extension type '{ext_type}' was not found in location '{location}'."
            )
        catalog: dict[str, dict[str, list[str]]] = self._doc.get("extensionTypeVersions") or {}
        original = next((v for k, v in catalog.items() if k.lower() == ext_type.lower()), {})
        return [{"releaseTrain": train, "versions": list(vs)} for train, vs in original.items()]

    # ------------------------------------------------------------------ KC: writes

    def put_child(
        self, ref: ClusterRef, kind: str, name: str, body: Any, ctx: WriteContext
    ) -> WriteResult:
        cluster = self._cluster(ref, nested=True)
        props = _properties_of(body)
        key = self._child_key(cluster, kind, name)
        existing = self._resources.get(key) if key else None
        if kind == "sourceControlConfigurations":
            return self._put_scc(cluster, name, body, props, existing, ctx)
        self._refuse_if_stopped(cluster)
        if kind == "extensions":
            return self._put_extension(cluster, name, body, props, existing, ctx)
        return self._put_flux(cluster, name, props, existing, ctx)

    def patch_child(
        self, ref: ClusterRef, kind: str, name: str, body: Any, ctx: WriteContext
    ) -> WriteResult:
        cluster, key, res = self._child(ref, kind, name)
        if kind == "sourceControlConfigurations":
            raise e.MethodNotAllowed("sourceControlConfigurations do not support PATCH.")
        self._refuse_if_stopped(cluster)
        patch = _properties_of(body)
        props = res.get("properties") or {}
        if kind == "extensions":
            allowed, readonly, create_only = (
                _EXT_PATCHABLE,
                _EXT_READONLY,
                ("extensionType", "scope"),
            )
        else:
            allowed, readonly, create_only = _FLUX_PATCHABLE, _FLUX_READONLY, ("scope", "namespace")
        for field_name in patch:
            if field_name in create_only:
                if not _same_value(field_name, patch[field_name], props.get(field_name)):
                    raise e.PropertyChangeNotAllowed(
                        f"Changing property '{field_name}' is not allowed: it can only be set "
                        "when the resource is created (delete and create it instead)."
                    )
            elif field_name not in allowed and field_name not in readonly:
                raise e.InvalidRequestContent(
                    f"The property 'properties.{field_name}' cannot be patched."
                )
        writable = {k: v for k, v in props.items() if k not in readonly}
        merged = merge_patch(writable, {k: v for k, v in patch.items() if k in allowed})
        has_secrets = "configurationProtectedSettings" in patch
        if kind == "extensions":
            _check_extension(merged, creating=False)
            _extension_defaults(merged)
        else:
            _check_flux(merged)
            _flux_defaults(merged)
        redact({"type": res["type"], "properties": merged})
        if merged == writable and not has_secrets:
            return WriteResult(200, res)
        error = ctx.lro_error
        if kind == "extensions":
            error = error or self._extension_precheck(cluster, merged, creating=False)
        self._write(res, merged, readonly, ctx, creating=False)
        op = self._start(cluster, key, res, kind, "update", error, ctx)
        return WriteResult(202, res, op)

    def delete_child(
        self, ref: ClusterRef, kind: str, name: str, force: bool, ctx: WriteContext
    ) -> WriteResult:
        cluster = self._cluster(ref, nested=True)
        key = self._child_key(cluster, kind, name)
        if key is None:
            return WriteResult(204, None)
        if kind != "sourceControlConfigurations" and not force:
            self._refuse_if_stopped(cluster)
        res = self._resources[key]
        if force:
            # "Delete the extension resource in Azure - not the normal asynchronous delete".
            self._cancel(key)
            self._unindex(key)
            return WriteResult(200, None)
        res.setdefault("properties", {})["provisioningState"] = "Deleting"
        op = self._start(cluster, key, res, kind, "delete", ctx.lro_error, ctx)
        return WriteResult(200 if kind == "sourceControlConfigurations" else 202, None, op, "PT1H")

    # ------------------------------------------------------------------ writes: per type

    def _put_extension(
        self,
        cluster: dict[str, Any],
        name: str,
        body: Any,
        props: dict[str, Any],
        existing: dict[str, Any] | None,
        ctx: WriteContext,
    ) -> WriteResult:
        writable = {k: copy.deepcopy(v) for k, v in props.items() if k not in _EXT_READONLY}
        _check_extension(writable, creating=True)
        _extension_defaults(writable)
        old = (existing or {}).get("properties") or {}
        if existing is not None:
            if str(old.get("extensionType", "")).lower() != str(writable["extensionType"]).lower():
                raise e.PropertyChangeNotAllowed(
                    "Changing property 'extensionType' is not allowed: delete and create the "
                    "extension instead."
                )
            if "scope" in old and old.get("scope") != writable.get("scope"):
                raise e.PropertyChangeNotAllowed(
                    "Changing property 'scope' is not allowed: delete and create the "
                    "extension instead."
                )
        error = ctx.lro_error or self._extension_precheck(
            cluster, writable, creating=existing is None
        )
        res, key = self._upsert_child(cluster, "extensions", name, existing)
        for extra in ("identity", "plan"):
            if isinstance(body, dict) and isinstance(body.get(extra), dict):
                res[extra] = (
                    self._identity(res, body[extra]) if extra == "identity" else body[extra]
                )
        self._write(res, writable, _EXT_READONLY, ctx, creating=existing is None)
        action = "create" if existing is None else "update"
        op = self._start(cluster, key, res, "extensions", action, error, ctx)
        return WriteResult(201 if existing is None else 200, res, op)

    def _put_flux(
        self,
        cluster: dict[str, Any],
        name: str,
        props: dict[str, Any],
        existing: dict[str, Any] | None,
        ctx: WriteContext,
    ) -> WriteResult:
        writable = {k: copy.deepcopy(v) for k, v in props.items() if k not in _FLUX_READONLY}
        _check_flux(writable)
        _flux_defaults(writable)
        if existing is not None:
            old = existing.get("properties") or {}
            for field_name in ("scope", "namespace"):
                if field_name in old and old[field_name] != writable[field_name]:
                    raise e.PropertyChangeNotAllowed(
                        f"Changing property '{field_name}' is not allowed: it can only be set "
                        "when the flux configuration is created (delete and create it instead)."
                    )
        error = ctx.lro_error
        ext_op: Operation | None = None
        if self._flux_extension(cluster) is None:
            # Azure installs microsoft.flux (named "flux") before the first configuration.
            ext_id = f"{cluster['id']}/providers/{KC_PROVIDER}/extensions/flux"
            ctx.authorize(f"{KC_PROVIDER}/extensions/write", ext_id)
            ext_props: dict[str, Any] = {"extensionType": FLUX_TYPE}
            _extension_defaults(ext_props)
            ext_error = self._extension_precheck(cluster, ext_props, creating=True)
            if ext_error is not None:
                error = error or LroError(
                    e.EXTENSION_OPERATION_FAILED,
                    f"The microsoft.flux extension could not be installed: {ext_error.message}",
                )
            old_ext_key = self._child_key(cluster, "extensions", "flux")
            ext_existing = self._resources.get(old_ext_key) if old_ext_key else None
            ext_res, ext_key = self._upsert_child(cluster, "extensions", "flux", ext_existing)
            self._write(ext_res, ext_props, _EXT_READONLY, ctx, creating=ext_existing is None)
            ext_op = self._start(cluster, ext_key, ext_res, "extensions", "create", ext_error, ctx)
        res, key = self._upsert_child(cluster, "fluxConfigurations", name, existing)
        self._write(res, writable, _FLUX_READONLY, ctx, creating=existing is None)
        action = "create" if existing is None else "update"
        op = self._start(cluster, key, res, "fluxConfigurations", action, error, ctx)
        if ext_op is not None:
            op.linked.append(ext_op)
        return WriteResult(201 if existing is None else 200, res, op)

    def _put_scc(
        self,
        cluster: dict[str, Any],
        name: str,
        body: Any,
        props: dict[str, Any],
        existing: dict[str, Any] | None,
        ctx: WriteContext,
    ) -> WriteResult:
        """Flux v1: a synchronous PUT (not an LRO), kept so that migrations can be tested."""
        writable = {k: copy.deepcopy(v) for k, v in props.items() if k not in _SCC_READONLY}
        if not isinstance(writable.get("repositoryUrl"), str) or not writable["repositoryUrl"]:
            raise e.InvalidRequestContent("The property 'properties.repositoryUrl' is required.")
        protected = writable.get("configurationProtectedSettings")
        if protected is not None and not _is_str_map(protected):
            raise e.InvalidRequestContent(
                "The property 'properties.configurationProtectedSettings' must map names to "
                "strings."
            )
        writable.setdefault("operatorNamespace", "default")
        writable.setdefault("operatorInstanceName", name)
        writable.setdefault("operatorType", "Flux")
        writable.setdefault("operatorScope", "cluster")
        writable.setdefault("enableHelmOperator", False)
        res, _ = self._upsert_child(cluster, "sourceControlConfigurations", name, existing)
        self._write(res, writable, _SCC_READONLY, ctx, creating=existing is None)
        now = iso(self.clock.now())
        res["properties"].update(
            {
                "repositoryPublicKey": "",
                "provisioningState": "Succeeded",
                "complianceStatus": {
                    "complianceState": "Installed",
                    "lastConfigApplied": now,
                    "message": "Operator installed.",
                    "messageLevel": "Information",
                },
            }
        )
        return WriteResult(201 if existing is None else 200, res)

    def _identity(self, res: Mapping[str, Any], identity: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(identity)
        if str(out.get("type", "")).lower() == "systemassigned":
            out["principalId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, str(res["id"])))
            out["tenantId"] = self.options.tenant_id
        return out

    # ------------------------------------------------------------------ writes: shared steps

    def _refuse_if_stopped(self, cluster: Mapping[str, Any]) -> None:
        props = cluster.get("properties") or {}
        power = props.get("powerState") if isinstance(props, Mapping) else None
        if (
            str(cluster.get("type", "")).lower() == CLUSTER_PROVIDERS["managedClusters"].lower()
            and isinstance(power, Mapping)
            and str(power.get("code", "")).lower() == "stopped"
        ):
            raise e.OperationNotAllowed(
                f"Operation is not allowed because the managed cluster '{cluster['name']}' is "
                "stopped. Start the cluster and retry."
            )

    @staticmethod
    def _disconnected(cluster: Mapping[str, Any]) -> bool:
        if str(cluster.get("type", "")).lower() != CLUSTER_PROVIDERS["connectedClusters"].lower():
            return False
        status = (cluster.get("properties") or {}).get("connectivityStatus")
        return status is not None and str(status).lower() != "connected"

    def _flux_extension(self, cluster: Mapping[str, Any]) -> dict[str, Any] | None:
        for key in self._children.get(_key(cluster["id"]), {}).get("extensions", {}).values():
            res = self._resources[key]
            if str((res.get("properties") or {}).get("extensionType", "")).lower() == FLUX_TYPE:
                return res
        return None

    def _extension_precheck(
        self, cluster: Mapping[str, Any], props: Mapping[str, Any], *, creating: bool
    ) -> LroError | None:
        """Why installing or updating this extension will fail on this cluster, if it will."""
        ext_type = str(props.get("extensionType", "")).lower()
        if creating and ext_type == FLUX_TYPE:
            sccs = self._children.get(_key(cluster["id"]), {}).get("sourceControlConfigurations")
            if sccs:
                return LroError(
                    e.EXTENSION_OPERATION_FAILED,
                    "Flux v1 sourceControlConfigurations exist on this cluster "
                    f"({', '.join(sorted(sccs))}): the Flux v1 operator conflicts with the "
                    "microsoft.flux (Flux v2) extension. Delete the Flux v1 configurations first.",
                )
        version, problem = self._target_version(props)
        if problem:
            return LroError(e.EXTENSION_OPERATION_FAILED, problem)
        if (
            ext_type == FLUX_TYPE
            and version
            and self._arm64(cluster)
            and version_key(version)[0] < ARM64_MIN_FLUX
        ):
            return LroError(
                e.EXTENSION_OPERATION_FAILED,
                f"microsoft.flux version {version} does not support ARM64 clusters: "
                "use version 1.7.0 or later.",
            )
        return None

    @staticmethod
    def _arm64(cluster: Mapping[str, Any]) -> bool:
        ctype = cluster_type_of(str(cluster.get("type", "")))
        if ctype is None:
            return False
        props = cluster.get("properties") or {}
        tags = cluster.get("tags") or {}
        return is_arm64(ctype, props, tags)

    def _target_version(self, props: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """(version to install, problem) from the catalogue: pinned, or newest of the train."""
        ext_type = str(props.get("extensionType", ""))
        trains = self._catalog.get(ext_type.lower())
        pinned = props.get("version")
        if not props.get("autoUpgradeMinorVersion", True) and pinned:
            if trains is not None and not any(pinned in vs for vs in trains.values()):
                return None, f"Version '{pinned}' of extension type '{ext_type}' is not available."
            return str(pinned), None
        if trains is None:
            return None, None  # a type the catalogue does not describe: nothing to check
        train = str(props.get("releaseTrain") or "Stable")
        versions = trains.get(train.lower())
        if not versions:
            return None, f"Release train '{train}' of extension type '{ext_type}' was not found."
        return max(versions, key=version_key), None

    def _upsert_child(
        self, cluster: Mapping[str, Any], kind: str, name: str, existing: dict[str, Any] | None
    ) -> tuple[dict[str, Any], str]:
        if existing is not None:
            return existing, _key(existing["id"])
        rid = f"{cluster['id']}/providers/{KC_PROVIDER}/{kind}/{name}"
        res: dict[str, Any] = {"id": rid, "name": name, "type": f"{KC_PROVIDER}/{kind}"}
        self._index(res)
        return res, _key(rid)

    def _write(
        self,
        res: dict[str, Any],
        writable: dict[str, Any],
        readonly: frozenset[str],
        ctx: WriteContext,
        *,
        creating: bool,
    ) -> None:
        """Store the new writable properties (read-only ones kept) and stamp systemData."""
        now = iso(self.clock.now())
        old = res.get("properties") or {}
        props = dict(writable)
        for k in readonly:
            if k in old:
                props[k] = old[k]
        redact({"type": res["type"], "properties": props})
        res["properties"] = props
        system = dict(res.get("systemData") or {}) if not creating else {}
        if creating or "createdAt" not in system:
            system.update(createdBy=ctx.principal, createdByType=ctx.identity_type, createdAt=now)
        system.update(
            lastModifiedBy=ctx.principal, lastModifiedByType=ctx.identity_type, lastModifiedAt=now
        )
        res["systemData"] = system
        meta = self._meta_of(_key(res["id"]))
        meta.generation += 1
        meta.compliance = None

    def _start(
        self,
        cluster: Mapping[str, Any],
        key: str,
        res: dict[str, Any],
        kind: str,
        action: str,
        error: LroError | None,
        ctx: WriteContext,
    ) -> Operation:
        """Start the async operation of a write (superseding one still running)."""
        self._cancel(key)
        now = self.clock.now()
        opts = self.options
        status = _IN_PROGRESS[action]
        op = Operation(
            id=str(uuid.uuid4()),
            resource_key=key,
            resource_id=str(res["id"]),
            cluster_key=_key(cluster["id"]),
            kind=kind,
            action=action,
            status=status,
            start=now,
            polls_left=opts.lro_polls,
            due=now + timedelta(seconds=opts.lro_seconds) if opts.lro_seconds is not None else None,
            error=error,
            blocked=self._disconnected(cluster),
            non_compliant=ctx.non_compliant,
        )
        props = res.setdefault("properties", {})
        if kind == "extensions":
            props["provisioningState"] = status
            if action == "create":
                props.setdefault("currentVersion", None)
            props.setdefault("statuses", [])
            props.setdefault("isSystemExtension", False)
            props.pop("errorInfo", None)
        elif kind == "fluxConfigurations":
            props["provisioningState"] = status
            if action != "delete":
                props["complianceState"] = "Pending"
                props["errorMessage"] = ""
                props.setdefault("statuses", [])
                props.setdefault("repositoryPublicKey", "")
                props.setdefault("sourceSyncedCommitId", None)
                props.setdefault("sourceUpdatedAt", None)
                props.setdefault("statusUpdatedAt", None)
        else:
            props["provisioningState"] = "Deleting" if action == "delete" else "Succeeded"
        self._ops[op.id] = op
        self._meta_of(key).operation = op
        self.stats.lro("started")
        if op.blocked:
            self._push(now + ARC_TIMEOUT, "op", op)
        elif op.due is not None:
            self._push(op.due, "op", op)
        return op

    def _cancel(self, key: str) -> None:
        meta = self._meta.get(key)
        op = meta.operation if meta else None
        if op is not None and not op.terminal:
            op.status = "Canceled"
            op.failure = LroError(
                e.OPERATION_CANCELED, "The operation was superseded by a newer request."
            )
            op.end = self.clock.now()
            self.stats.lro("canceled")
            self._retire(op)

    def _retire(self, op: Operation) -> None:
        # Keep the most recent finished operations pollable; forget the oldest.
        self._finished_ops.append(op.id)
        if len(self._finished_ops) > 50_000:
            for old in self._finished_ops[:10_000]:
                self._ops.pop(old, None)
            del self._finished_ops[:10_000]

    def _finish(self, op: Operation, error: LroError | None) -> None:
        """End an operation: apply its outcome to the resource."""
        if op.terminal:
            return
        for linked in op.linked:
            # A linked operation still blocked on a disconnected cluster shares the timeout;
            # otherwise it ends with its own outcome (an injected failure of the flux
            # configuration does not fail the extension installed for it).
            self._finish(linked, error if linked.blocked else linked.error)
        now = self.clock.now()
        op.end = now
        op.status = "Failed" if error else "Succeeded"
        op.failure = error
        self.stats.lro("failed" if error else "succeeded")
        self._retire(op)
        res = self._resources.get(op.resource_key)
        meta = self._meta.get(op.resource_key)
        if res is None or meta is None or meta.operation is not op:
            return  # the resource went away (force delete) or a newer write took over
        props = res.setdefault("properties", {})
        if error is not None:
            self._fail(res, op, error)
        elif op.action == "delete":
            self._unindex(op.resource_key)
        elif op.kind == "extensions":
            version, _ = self._target_version(props)
            props["currentVersion"] = version or props.get("version") or props.get("currentVersion")
            props["provisioningState"] = "Succeeded"
            props["statuses"] = []
            props.pop("errorInfo", None)
        elif op.kind == "fluxConfigurations":
            props["provisioningState"] = "Succeeded"
            props["errorMessage"] = ""
            if props.get("suspend"):
                target = "Suspended"
            elif op.non_compliant or self._source_fails(props):
                target = "Non-Compliant"
            else:
                target = "Compliant"
            meta.compliance = target
            props["complianceState"] = "Pending"
            if self.options.reconcile_seconds == 0:
                self._settle_compliance(op.resource_key, meta)
            else:
                when = now + timedelta(seconds=self.options.reconcile_seconds)
                self._push(when, "reconcile", (op.resource_key, meta.generation))

    def _fail(self, res: dict[str, Any], op: Operation, error: LroError) -> None:
        props = res.setdefault("properties", {})
        props["provisioningState"] = "Failed"
        if op.kind == "extensions":
            props["errorInfo"] = error.to_json()
            props["statuses"] = [
                {
                    "code": error.code,
                    "displayStatus": "Failed",
                    "level": "Error",
                    "message": error.message,
                    "time": iso(self.clock.now()),
                }
            ]
        elif op.kind == "fluxConfigurations":
            props["errorMessage"] = error.message
            props["complianceState"] = "Unknown"

    def _source_fails(self, props: Mapping[str, Any]) -> bool:
        source = props.get(_SOURCE_KEYS.get(str(props.get("sourceKind")), "gitRepository"))
        url = source.get("url") if isinstance(source, Mapping) else None
        return isinstance(url, str) and _norm_url(url) in self.failing_sources

    def _settle_compliance(self, key: str, meta: _Meta) -> None:
        res = self._resources.get(key)
        target = meta.compliance
        meta.compliance = None
        if res is None or target is None:
            return
        props = res["properties"]
        now = iso(self.clock.now())
        props["complianceState"] = target
        props["statuses"] = _flux_statuses(res["name"], props, target, now)
        if target != "Suspended":
            props["sourceSyncedCommitId"] = _commit_of(props)
            props["sourceUpdatedAt"] = now
        props["statusUpdatedAt"] = now

    # ------------------------------------------------------------------ admin

    def dump(self) -> dict[str, Any]:
        """The current state in the snapshot format (shares live objects: serialize at once).

        Work still in flight (operations not finished, flux configurations still reconciling)
        is added to the ``emulator`` section as ``operations`` and ``reconciling``, so that an
        emulator started from the dump carries on where this one stopped, as ARM does after a
        restart of its front end: the same operation ids poll to the same outcome.
        """
        self.tick()
        out: dict[str, Any] = {}
        for k, v in self._doc.items():
            out[k] = list(self._resources.values()) if k == "resources" else v
        if "resources" not in out:
            out["resources"] = list(self._resources.values())
        section = {
            k: v
            for k, v in dict(out.get("emulator") or {}).items()
            if k not in ("operations", "reconciling")
        }
        inflight = self._inflight()
        if inflight or "emulator" in out:
            out["emulator"] = {**section, **inflight}
        return out

    def _inflight(self) -> dict[str, Any]:
        """The operations not finished and the reconciles not settled, as JSON."""
        operations = []
        for op in self._ops.values():
            if op.terminal:
                continue
            operations.append(
                {
                    "id": op.id,
                    "resourceId": op.resource_id,
                    "kind": op.kind,
                    "action": op.action,
                    "status": op.status,
                    "startTime": iso(op.start),
                    "pollsLeft": op.polls_left,
                    "due": iso(op.due) if op.due is not None else None,
                    "error": op.error.to_json() if op.error is not None else None,
                    "blocked": op.blocked,
                    "nonCompliant": op.non_compliant,
                    "linked": [linked.id for linked in op.linked],
                }
            )
        reconciling = []
        for when, _, kind, ref in sorted(self._heap):
            if kind != "reconcile":
                continue
            key, generation = ref
            meta = self._meta.get(key)
            res = self._resources.get(key)
            if meta is None or res is None or meta.generation != generation or not meta.compliance:
                continue
            reconciling.append(
                {
                    "resourceId": res["id"],
                    "target": meta.compliance,
                    "due": iso(datetime.fromtimestamp(when, UTC)),
                }
            )
        out: dict[str, Any] = {}
        if operations:
            out["operations"] = operations
        if reconciling:
            out["reconciling"] = reconciling
        return out

    def _restore(self, operations: Iterable[Any], reconciling: Iterable[Any]) -> None:
        """Take over the in-flight work of a dumped emulator (``snapshot.validate`` checked
        the shapes and that every resource exists)."""
        restored: dict[str, tuple[Operation, list[str]]] = {}
        for item in operations:
            key = _key(item["resourceId"])
            res = self._resources[key]
            cluster_key = key[: key.rfind("/providers/microsoft.kubernetesconfiguration/")]
            error = item.get("error")
            op = Operation(
                id=str(item["id"]).lower(),
                resource_key=key,
                resource_id=str(res["id"]),
                cluster_key=cluster_key,
                kind=_KINDS[str(item["kind"]).lower()],
                action=item["action"],
                status=item["status"],
                start=parse_time(item["startTime"]),
                polls_left=item.get("pollsLeft"),
                due=parse_time(item["due"]) if item.get("due") else None,
                error=LroError(error["code"], error["message"]) if error else None,
                blocked=bool(item.get("blocked")),
                non_compliant=bool(item.get("nonCompliant")),
            )
            self._ops[op.id] = op
            self._meta_of(key).operation = op
            restored[op.id] = (op, [str(i).lower() for i in item.get("linked") or ()])
            if op.blocked:
                self._push(op.start + ARC_TIMEOUT, "op", op)
            elif op.due is not None:
                self._push(op.due, "op", op)
        for op, linked in restored.values():
            op.linked = [restored[i][0] for i in linked if i in restored]
        for item in reconciling:
            key = _key(item["resourceId"])
            meta = self._meta_of(key)
            meta.compliance = item["target"]
            self._push(parse_time(item["due"]), "reconcile", (key, meta.generation))

    def catalog(self) -> dict[str, Any]:
        return dict(self._doc.get("extensionTypeVersions") or {})

    def set_catalog(self, catalog: Any) -> list[str]:
        """Replace the version catalogue; auto-upgrade extensions move to their train's newest.

        Returns the ids of the extensions that moved.
        """
        if not isinstance(catalog, dict) or not all(
            isinstance(trains, dict)
            and all(
                isinstance(vs, list) and all(isinstance(v, str) for v in vs)
                for vs in trains.values()
            )
            for trains in catalog.values()
        ):
            raise e.InvalidRequestContent(
                "The catalogue must be {extensionType: {releaseTrain: [versions]}}."
            )
        self._doc["extensionTypeVersions"] = catalog
        self._set_catalog(catalog)
        moved: list[str] = []
        for ckey, kinds in self._children.items():
            cluster = self._clusters.get(ckey)
            if cluster is None or self._disconnected(cluster) or _stopped(cluster):
                continue  # an agent that cannot reach Azure does not upgrade
            for key in kinds.get("extensions", {}).values():
                res = self._resources[key]
                props = res.get("properties") or {}
                if not props.get("autoUpgradeMinorVersion", True):
                    continue
                if props.get("provisioningState") != "Succeeded":
                    continue
                version, problem = self._target_version(props)
                if version and not problem and version != props.get("currentVersion"):
                    props["currentVersion"] = version
                    moved.append(str(res["id"]))
        return moved

    def set_failing_sources(self, urls: Iterable[str]) -> None:
        self.failing_sources = {_norm_url(u) for u in urls}

    def upsert_resource(self, resource: Any) -> dict[str, Any]:
        """Add or replace one resource (tests change a cluster's power or connectivity)."""
        if not isinstance(resource, dict):
            raise e.InvalidRequestContent("The resource must be a JSON object.")
        rid, rtype, name = resource.get("id"), resource.get("type"), resource.get("name")
        if not all(isinstance(v, str) and v for v in (rid, rtype, name)):
            raise e.InvalidRequestContent("The resource needs 'id', 'type' and 'name'.")
        assert isinstance(rid, str) and isinstance(rtype, str)
        implied = resource_type_of(rid)
        if implied is None or implied[0].lower() != rtype.lower():
            raise e.InvalidRequestContent("The resource 'type' does not match its 'id'.")
        parts = rid.strip("/").split("/")
        key = _key(rid)
        if rtype.lower() == RESOURCE_GROUPS:
            self._subscription(parts[1])
        elif rtype.lower() in KC_TYPES:
            cluster_key = self._split_child(key)[0]
            if cluster_key not in self._clusters:
                raise e.ParentResourceNotFound(
                    "The parent cluster of the resource is not in the state."
                )
        else:
            self._group(parts[1], parts[3])
        redact(resource)
        if key in self._resources:
            # Replace in place: the dump keeps the resource where the snapshot had it.
            old = self._resources[key]
            old.clear()
            old.update(resource)
            if rtype.lower() in CLUSTER_TYPES:
                self._clusters[key] = old
            if rtype.lower() == RESOURCE_GROUPS:
                self._groups[key] = old
        else:
            self._index(resource)
        if rtype.lower() in CLUSTER_TYPES and not self._disconnected(resource):
            self._reconnect(key)
        return self._resources[key]

    def _reconnect(self, cluster_key: str) -> None:
        """A cluster is connected again: its blocked operations run their normal course."""
        now = self.clock.now()
        for op in list(self._ops.values()):
            if op.cluster_key == cluster_key and op.blocked and not op.terminal:
                op.blocked = False
                op.polls_left = self.options.lro_polls
                if self.options.lro_seconds is not None:
                    op.due = now + timedelta(seconds=self.options.lro_seconds)
                    self._push(op.due, "op", op)

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
            if scope is not None and _subscription_of(res["id"]) not in scope:
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

    # ------------------------------------------------------------------ paging

    def page(
        self, items: list[Any], skip_token: str | None, top: int | None = None
    ) -> tuple[list[Any], str | None]:
        """One page of a list and the ``$skiptoken`` of the next (None on the last page)."""
        offset = 0
        if skip_token:
            if not skip_token.isdigit():
                raise e.InvalidSkipToken("The $skiptoken is not valid.")
            offset = int(skip_token)
        if top is not None:
            items = items[:top]
        end = offset + self.options.page_size
        return items[offset:end], (str(end) if end < len(items) else None)


# --------------------------------------------------------------------------- body rules


def _properties_of(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise e.InvalidRequestContent(
            "The request content was invalid and could not be deserialized."
        )
    props = body.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise e.InvalidRequestContent("The property 'properties' must be an object.")
    return props


def _same_value(field_name: str, new: Any, old: Any) -> bool:
    if field_name == "extensionType":
        return str(new).lower() == str(old).lower()
    return bool(new == old)


def _check_extension(props: dict[str, Any], *, creating: bool) -> None:
    ext_type = props.get("extensionType")
    if creating and (not isinstance(ext_type, str) or not ext_type):
        raise e.InvalidRequestContent("The property 'properties.extensionType' is required.")
    for name in ("autoUpgradeMinorVersion",):
        if name in props and props[name] is not None and not isinstance(props[name], bool):
            raise e.InvalidRequestContent(f"The property 'properties.{name}' must be a boolean.")
    for name in ("releaseTrain", "version"):
        if props.get(name) is not None and not isinstance(props[name], str):
            raise e.InvalidRequestContent(f"The property 'properties.{name}' must be a string.")
    for name in ("configurationSettings", "configurationProtectedSettings"):
        if props.get(name) is not None and not _is_str_map(props[name]):
            raise e.InvalidRequestContent(
                f"The property 'properties.{name}' must map setting names to string values."
            )
    if props.get("version") and props.get("autoUpgradeMinorVersion", True):
        raise e.InvalidRequestContent("To use 'version', autoUpgradeMinorVersion must be 'false'.")
    scope = props.get("scope")
    if scope is not None:
        if not isinstance(scope, dict) or len([k for k, v in scope.items() if v is not None]) != 1:
            raise e.InvalidRequestContent(
                "The property 'properties.scope' must set exactly one of 'cluster' or 'namespace'."
            )
        if str(ext_type or "").lower() == FLUX_TYPE and scope.get("namespace") is not None:
            raise e.InvalidRequestContent(
                "The microsoft.flux extension can only be installed at cluster scope."
            )


def _extension_defaults(props: dict[str, Any]) -> None:
    props.setdefault("autoUpgradeMinorVersion", True)
    if props["autoUpgradeMinorVersion"] is None:
        props["autoUpgradeMinorVersion"] = True
    props.setdefault("releaseTrain", "Stable")
    props.setdefault("version", None)
    if str(props.get("extensionType", "")).lower() == FLUX_TYPE and not props.get("scope"):
        props["scope"] = {"cluster": {"releaseNamespace": "flux-system"}}
    if props.get("configurationSettings") is None:
        props["configurationSettings"] = {}


def _check_flux(props: dict[str, Any]) -> None:
    def bad(where: str, what: str) -> e.InvalidRequestContent:
        return e.InvalidRequestContent(f"The property 'properties.{where}' {what}.")

    scope = props.get("scope", "cluster")
    if scope not in ("cluster", "namespace"):
        raise bad("scope", "must be 'cluster' or 'namespace'")
    namespace = props.get("namespace", "default")
    if not isinstance(namespace, str) or len(namespace) > 253 or not _NAMESPACE.match(namespace):
        raise bad("namespace", "must be at most 253 lower-case alphanumerics, '-' or '.'")
    kind = props.get("sourceKind", "GitRepository")
    if kind not in _SOURCE_KEYS:
        raise bad("sourceKind", "must be one of GitRepository, Bucket, AzureBlob")
    if "suspend" in props and not isinstance(props["suspend"], bool):
        raise bad("suspend", "must be a boolean")
    for key in _SOURCE_KEYS.values():
        if props.get(key) is not None and not isinstance(props[key], dict):
            raise bad(key, "must be an object")
    source = props.get(_SOURCE_KEYS[str(kind)])
    if not isinstance(source, dict) or not isinstance(source.get("url"), str) or not source["url"]:
        raise bad(f"{_SOURCE_KEYS[str(kind)]}.url", f"is required when sourceKind is {kind}")
    protected = props.get("configurationProtectedSettings")
    if protected is not None and not _is_str_map(protected):
        raise bad("configurationProtectedSettings", "must map names to strings")
    kustomizations = props.get("kustomizations")
    if kustomizations is None:
        return
    if not isinstance(kustomizations, dict):
        raise bad("kustomizations", "must be an object keyed by kustomization name")
    for name, kust in kustomizations.items():
        where = f"kustomizations.{name}"
        if not isinstance(kust, dict):
            raise bad(where, "must be an object")
        for int_field in ("timeoutInSeconds", "syncIntervalInSeconds", "retryIntervalInSeconds"):
            value = kust.get(int_field)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise bad(f"{where}.{int_field}", "must be an integer")
        for bool_field in ("prune", "force", "wait"):
            if kust.get(bool_field) is not None and not isinstance(kust[bool_field], bool):
                raise bad(f"{where}.{bool_field}", "must be a boolean")
        if kust.get("path") is not None and not isinstance(kust["path"], str):
            raise bad(f"{where}.path", "must be a string")
        # Names are not checked against the other kustomizations: Azure accepts a dangling
        # dependency and Flux reports the dependent as DependencyNotReady.
        depends = kust.get("dependsOn")
        if depends is not None and (
            not isinstance(depends, list) or not all(isinstance(d, str) for d in depends)
        ):
            raise bad(f"{where}.dependsOn", "must be a list of kustomization names")


def _flux_defaults(props: dict[str, Any]) -> None:
    """Fill the defaults ARM fills (swagger ``default`` values of 2023-05-01)."""
    props.setdefault("scope", "cluster")
    props.setdefault("namespace", "default")
    props.setdefault("sourceKind", "GitRepository")
    props.setdefault("suspend", False)
    git = props.get("gitRepository")
    if isinstance(git, dict):
        git.setdefault("timeoutInSeconds", 600)
        git.setdefault("syncIntervalInSeconds", 600)
        ref = git.get("repositoryRef")
        if isinstance(ref, dict):
            for k in ("branch", "tag", "semver", "commit"):
                ref.setdefault(k, None)
    bucket = props.get("bucket")
    if isinstance(bucket, dict):
        bucket.setdefault("insecure", True)
        bucket.setdefault("timeoutInSeconds", 600)
        bucket.setdefault("syncIntervalInSeconds", 600)
    blob = props.get("azureBlob")
    if isinstance(blob, dict):
        blob.setdefault("timeoutInSeconds", 600)
        blob.setdefault("syncIntervalInSeconds", 600)
        principal = blob.get("servicePrincipal")
        if isinstance(principal, dict):
            principal.setdefault("clientCertificateSendChain", False)
    kustomizations = props.get("kustomizations")
    if isinstance(kustomizations, dict):
        for name, kust in kustomizations.items():
            if not isinstance(kust, dict):
                continue
            kust["name"] = name
            kust.setdefault("path", "")
            kust.setdefault("timeoutInSeconds", 600)
            kust.setdefault("syncIntervalInSeconds", 600)
            kust.setdefault("prune", False)
            kust.setdefault("force", False)
            kust.setdefault("wait", True)


def _commit_of(props: Mapping[str, Any]) -> str:
    git = props.get("gitRepository") or {}
    ref = (git.get("repositoryRef") or {}) if isinstance(git, Mapping) else {}
    label = next((str(ref[k]) for k in ("branch", "tag", "semver") if ref.get(k)), "HEAD")
    source = props.get(_SOURCE_KEYS.get(str(props.get("sourceKind")), "gitRepository")) or {}
    url = source.get("url", "") if isinstance(source, Mapping) else ""
    sha = ref.get("commit") or hashlib.sha1(f"{url}@{label}".encode()).hexdigest()
    return f"{label}/{sha}"


def _flux_statuses(
    name: str, props: Mapping[str, Any], state: str, now: str
) -> list[dict[str, Any]]:
    """Flux objects' statuses as the fluxconfig-agent reports them."""
    namespace = str(props.get("namespace") or "default")
    source_kind = str(props.get("sourceKind") or "GitRepository")
    failing = state == "Non-Compliant"
    suspended = state == "Suspended"
    source_state = "Suspended" if suspended else state

    def condition(ok: bool, message: str, reason: str) -> list[dict[str, str]]:
        return [
            {
                "lastTransitionTime": now,
                "message": message,
                "reason": reason,
                "status": "True" if ok else "False",
                "type": "Ready",
            }
        ]

    source = props.get(_SOURCE_KEYS.get(source_kind, "gitRepository")) or {}
    url = source.get("url", "") if isinstance(source, Mapping) else ""
    statuses: list[dict[str, Any]] = [
        {
            "name": name,
            "namespace": namespace,
            "kind": source_kind,
            "complianceState": source_state,
            "appliedBy": None,
            "helmReleaseProperties": None,
            "statusConditions": condition(
                not failing,
                f"failed to checkout and determine revision: unable to clone '{url}'"
                if failing
                else f"stored artifact for revision '{_commit_of(props)}'",
                "GitOperationFailed" if failing else "Succeeded",
            ),
        }
    ]
    for kust_name in props.get("kustomizations") or {}:
        statuses.append(
            {
                "name": f"{name}-{kust_name}",
                "namespace": namespace,
                "kind": "Kustomization",
                "complianceState": source_state,
                "appliedBy": None,
                "helmReleaseProperties": None,
                "statusConditions": condition(
                    not failing,
                    "dependency not ready: source artifact is not available"
                    if failing
                    else f"Applied revision: {_commit_of(props)}",
                    "ArtifactFailed" if failing else "ReconciliationSucceeded",
                ),
            }
        )
    return statuses


def _stopped(cluster: Mapping[str, Any]) -> bool:
    power = (cluster.get("properties") or {}).get("powerState")
    return isinstance(power, Mapping) and str(power.get("code", "")).lower() == "stopped"


def _norm_url(url: str) -> str:
    return url.strip().lower().rstrip("/").removesuffix(".git")


# --------------------------------------------------------------------------- $filter


_FILTER_TOKEN = re.compile(r"\s*(?:(\()|(\))|'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_]*))")
_FILTER_FIELDS = {
    "resourcetype": "type",
    "resourcegroup": "resourceGroup",
    "name": "name",
    "location": "location",
}


def _filter_fields(res: Mapping[str, Any]) -> dict[str, str]:
    parts = str(res["id"]).strip("/").split("/")
    return {
        "type": str(res.get("type", "")).lower(),
        "resourceGroup": parts[3].lower() if len(parts) > 3 else "",
        "name": str(res.get("name", "")).lower(),
        "location": str(res.get("location", "")).lower(),
    }


Predicate = Callable[[Mapping[str, str]], bool]


def _any_of(items: tuple[Predicate, ...]) -> Predicate:
    return lambda row: any(p(row) for p in items)


def _all_of(items: tuple[Predicate, ...]) -> Predicate:
    return lambda row: all(p(row) for p in items)


def _equals(column: str, wanted: str) -> Predicate:
    return lambda row: row.get(column) == wanted


class _FilterParser:
    """Recursive descent over the tokens of an OData ``$filter``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        self.i = 0
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _FILTER_TOKEN.match(stripped, pos)
            if m is None or m.end() == pos:
                raise self.fail()
            if m.group(1):
                self.tokens.append(("(", "("))
            elif m.group(2):
                self.tokens.append((")", ")"))
            elif m.group(3) is not None:
                self.tokens.append(("str", m.group(3).replace("''", "'")))
            else:
                self.tokens.append(("word", m.group(4)))
            pos = m.end()

    def fail(self) -> e.InvalidFilterInQueryString:
        return e.InvalidFilterInQueryString(
            f"Invalid $filter '{self.text}' specified in the query string: the emulator "
            "supports <resourceType|resourceGroup|name|location> eq '<value>' joined with "
            "and/or and parentheses."
        )

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.i != len(self.tokens):
            raise self.fail()
        return predicate

    def _word(self, word: str) -> bool:
        if self.i < len(self.tokens) and self.tokens[self.i] == ("word", word):
            self.i += 1
            return True
        return False

    def expr(self) -> Predicate:
        items = [self.conj()]
        while self._word("or"):
            items.append(self.conj())
        return items[0] if len(items) == 1 else _any_of(tuple(items))

    def conj(self) -> Predicate:
        items = [self.atom()]
        while self._word("and"):
            items.append(self.atom())
        return items[0] if len(items) == 1 else _all_of(tuple(items))

    def atom(self) -> Predicate:
        tokens = self.tokens
        if self.i < len(tokens) and tokens[self.i][0] == "(":
            self.i += 1
            inner = self.expr()
            if self.i >= len(tokens) or tokens[self.i][0] != ")":
                raise self.fail()
            self.i += 1
            return inner
        if self.i + 3 > len(tokens):
            raise self.fail()
        (k1, field_name), (k2, op), (k3, value) = tokens[self.i : self.i + 3]
        column = _FILTER_FIELDS.get(field_name.lower()) if k1 == "word" else None
        if column is None or k2 != "word" or op != "eq" or k3 != "str":
            raise self.fail()
        self.i += 3
        return _equals(column, value.lower())


def parse_resource_filter(text: str) -> Predicate:
    """An OData ``$filter`` of ``resources.list``: ``eq`` on resourceType, resourceGroup, name,
    location, combined with ``and``/``or`` and parentheses (values compare case-insensitively).

    Anything else raises ``InvalidFilterInQueryString`` rather than filtering wrongly.
    """
    return _FilterParser(text).parse()

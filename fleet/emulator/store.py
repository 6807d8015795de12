"""The emulator's store: the resources of a fleet snapshot, indexed as ARM looks them up.

Resources are kept by key (the lower-cased id: ARM ids are case-insensitive) and indexed by
kind: resource groups, clusters, and each cluster's Microsoft.KubernetesConfiguration children
by kind and name. Subscriptions and the extension version catalogue come from their own
sections of the snapshot. The lookups raise the not-found error ARM answers for what is
missing (the subscription, the group, the cluster or the child, in that order).

The snapshot document is kept as loaded, so a dump gives back its top-level keys in their order
and any keys the emulator does not read. Resources are the document's own dicts: the other parts
mutate them in place, and a dump serializes them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet.core.ids import KC_PROVIDER
from fleet.emulator import errors as e
from fleet.emulator.options import EmulatorOptions
from fleet.emulator.snapshot import (
    CLUSTER_TYPES,
    KC_TYPES,
    MAINTENANCE,
    RESOURCE_GROUPS,
    redact,
    resource_type_of,
)

#: Canonical child collection segment, keyed by its lower-case spelling.
KINDS = {
    "extensions": "extensions",
    "fluxconfigurations": "fluxConfigurations",
    "sourcecontrolconfigurations": "sourceControlConfigurations",
}


def key_of(resource_id: str) -> str:
    """The store key of a resource id (ids are case-insensitive)."""
    return resource_id.rstrip("/").lower()


def subscription_of(resource_id: str) -> str:
    """The lower-cased subscription id of ``/subscriptions/{s}/...``."""
    return resource_id.split("/", 3)[2].lower()


def split_child(key: str) -> tuple[str, str, str]:
    """(cluster key, canonical kind, lower-cased name) of a child's key."""
    marker = f"/providers/{KC_PROVIDER.lower()}/"
    idx = key.rfind(marker)
    kind, name = key[idx + len(marker) :].split("/")[:2]
    return key[:idx], KINDS[kind], name


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


class Store:
    """The resources of one fleet snapshot, their indexes and the lookups over them."""

    def __init__(self, snapshot: Mapping[str, Any], options: EmulatorOptions | None = None) -> None:
        self.options = options or EmulatorOptions()
        # The document as loaded: top-level keys in order, unknown keys kept for the dump.
        self._doc: dict[str, Any] = dict(snapshot)
        self._subs: dict[str, dict[str, Any]] = {}
        self._resources: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, dict[str, Any]] = {}
        self._clusters: dict[str, dict[str, Any]] = {}
        self._children: dict[str, dict[str, dict[str, str]]] = {}
        #: AKS maintenance configurations: cluster key -> lower-cased name -> resource key.
        self._maintenance: dict[str, dict[str, str]] = {}
        self._catalog: dict[str, dict[str, list[str]]] = {}
        for sub in snapshot.get("subscriptions") or ():
            self._subs[str(sub["subscriptionId"]).lower()] = sub
        self._set_catalog(snapshot.get("extensionTypeVersions") or {})
        for resource in snapshot.get("resources") or ():
            self._index(resource)

    # ------------------------------------------------------------------ indexing

    def _index(self, resource: dict[str, Any]) -> None:
        key = key_of(resource["id"])
        self._resources[key] = resource
        rtype = str(resource["type"]).lower()
        if rtype == RESOURCE_GROUPS:
            self._groups[key] = resource
        elif rtype in CLUSTER_TYPES:
            self._clusters[key] = resource
        elif rtype in KC_TYPES:
            cluster_key, kind, name = split_child(key)
            self._children.setdefault(cluster_key, {}).setdefault(kind, {})[name] = key
        elif rtype == MAINTENANCE:
            cluster_key, _, name = key.rpartition("/maintenanceconfigurations/")
            self._maintenance.setdefault(cluster_key, {})[name] = key

    def _unindex(self, key: str) -> None:
        resource = self._resources.pop(key, None)
        if resource is None:
            return
        rtype = str(resource["type"]).lower()
        self._groups.pop(key, None)
        self._clusters.pop(key, None)
        if rtype in KC_TYPES:
            cluster_key, kind, name = split_child(key)
            self._children.get(cluster_key, {}).get(kind, {}).pop(name, None)
        if rtype == MAINTENANCE:
            cluster_key, _, name = key.rpartition("/maintenanceconfigurations/")
            self._maintenance.get(cluster_key, {}).pop(name, None)

    def _set_catalog(self, catalog: Mapping[str, Any]) -> None:
        """Index the version catalogue by lower-cased type and train (the document keeps the
        spelling it was given, for the dump and the version list)."""
        self._catalog = {
            str(t).lower(): {str(train).lower(): list(vs) for train, vs in trains.items()}
            for t, trains in catalog.items()
        }

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

    def _scope(self, sub: str, rg: str | None) -> str:
        """The key prefix of what a subscription, or one of its groups, holds (both checked)."""
        if rg is None:
            self._subscription(sub)
            return f"/subscriptions/{sub}/".lower()
        self._group(sub, rg)
        return f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()

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

    def _child_keys(self, cluster: Mapping[str, Any], kind: str) -> dict[str, str]:
        """The keys of a cluster's children of one kind, by lower-cased name."""
        return self._children.get(key_of(cluster["id"]), {}).get(kind, {})

    def _child_key(self, cluster: Mapping[str, Any], kind: str, name: str) -> str | None:
        return self._child_keys(cluster, kind).get(name.lower())

    def _child(
        self, ref: ClusterRef, kind: str, name: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(cluster, child) of a child's URL."""
        cluster = self._cluster(ref, nested=True)
        key = self._child_key(cluster, kind, name)
        if key is None:
            raise e.ResourceNotFound(
                f"The Resource '{KC_PROVIDER}/{kind}/{name}' under resource group "
                f"'{ref.resource_group}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix"
            )
        return cluster, self._resources[key]

    # ------------------------------------------------------------------ the document

    def dump(self) -> dict[str, Any]:
        """The document with its current resources (shares live objects: serialize at once)."""
        out: dict[str, Any] = {}
        for k, v in self._doc.items():
            out[k] = list(self._resources.values()) if k == "resources" else v
        if "resources" not in out:
            out["resources"] = list(self._resources.values())
        return out

    def catalog(self) -> dict[str, Any]:
        return dict(self._doc.get("extensionTypeVersions") or {})

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
        key = key_of(rid)
        if rtype.lower() == RESOURCE_GROUPS:
            self._subscription(parts[1])
        elif rtype.lower() in KC_TYPES or rtype.lower() == MAINTENANCE:
            cluster_key = (
                split_child(key)[0]
                if rtype.lower() in KC_TYPES
                else key.rpartition("/maintenanceconfigurations/")[0]
            )
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
        return self._resources[key]

"""The extension type catalogue: extension types and their versions, per api-version.

Two generations of the API are served from the snapshot's ``extensionTypeVersions``
(``{type: {train: [versions]}}``):

- 2022-01-15-preview (``extension_type_versions`` of the multi-API SDK): one item per release
  train, ``{releaseTrain, versions}``;
- 2026-05-01 (``ExtensionTypes_*`` and ``SubscriptionExtensionTypes_*``): extension types as
  proxy resources at subscription, location and cluster scope, and their versions as one
  resource per version (``properties.version``), filtered by the ``releaseTrain`` query
  parameter (Stable when absent, compared without case), ``majorVersion`` and ``showLatest``.
  A train the catalogue lacks lists no versions; a type it lacks is 404.

Each location serves the releases that reached it (``regions``: the snapshot's
``extensionTypeRegions`` on the emulated clock), so a release can reach one region before
another; the subscription-scope catalogue lists a release once any region serves it.

What an extension type says about itself (description, publisher, scopes, plan) is built from
the type's name unless the snapshot's optional ``extensionTypes`` section gives its
``properties`` (``{type: {"properties": {...}}}``), which are then answered as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.core.ids import KC_PROVIDER
from fleet.emulator import errors as e
from fleet.emulator import regions
from fleet.emulator.lro import Lro
from fleet.emulator.rules import version_key
from fleet.emulator.store import key_of

#: The api-versions of the catalogue: the first answers the old one-item-per-train shape.
CATALOG_VERSIONS = ("2022-01-15-preview", "2026-05-01")
#: Cluster types as the 2026-05-01 catalogue names them.
_CLUSTER_TYPES = ["connectedClusters", "managedClusters"]
_NAMESPACES = {"microsoft.flux": "flux-system"}


class Catalog(Lro):
    """Reads of the extension type catalogue."""

    def _trains(self, ext_type: str, location: str) -> dict[str, list[str]]:
        """The catalogue's trains of a type as the snapshot spells them (404 when unknown), as
        ``location`` serves them now (``regions``; a scope without a location: every release
        some region serves). ``location`` is a location name or a catalogue scope."""
        if self._catalog.get(ext_type.lower()) is None:
            raise e.ResourceNotFound(
                f"Extension type '{ext_type}' was not found in location '{location}'."
            )
        catalog: Mapping[str, Any] = self._doc.get("extensionTypeVersions") or {}
        found: Mapping[str, Any] = next(
            (v for k, v in catalog.items() if k.lower() == ext_type.lower()), {}
        )
        where = self._location_of(location)
        now = self.clock.now()
        return {
            str(k): [x for x in v if regions.served(self._doc, ext_type, x, where, now)]
            for k, v in found.items()
        }

    def _location_of(self, scope: str) -> str | None:
        """The location a catalogue scope names: ``.../locations/{loc}``, a cluster's own
        location below a cluster, a bare location name; None at subscription scope."""
        lowered = scope.lower()
        if "/locations/" in lowered:
            return lowered.rsplit("/locations/", 1)[1].split("/")[0]
        if lowered.startswith("/subscriptions/") and "/resourcegroups/" in lowered:
            cluster_id = lowered.rsplit("/providers/", 1)[0]
            cluster = self._clusters.get(key_of(cluster_id)) or {}
            return str(cluster.get("location") or "") or None
        if lowered.startswith("/"):
            return None
        return lowered or None

    # ------------------------------------------------------------------ 2022-01-15-preview

    def list_extension_type_versions(
        self, sub: str, location: str, ext_type: str
    ) -> list[dict[str, Any]]:
        self._subscription(sub)
        trains = self._trains(ext_type, location)
        return [{"releaseTrain": train, "versions": vs} for train, vs in trains.items()]

    # ------------------------------------------------------------------ 2026-05-01

    def extension_types(self, sub: str, scope: str) -> list[dict[str, Any]]:
        """Every extension type of the catalogue, as resources below ``scope`` (the id prefix
        in front of ``/extensionTypes``: the provider at subscription scope, one of its
        locations, or the provider below a cluster)."""
        self._subscription(sub)
        catalog: Mapping[str, Any] = self._doc.get("extensionTypeVersions") or {}
        return [self._type_json(scope, str(name)) for name in catalog]

    def extension_type(self, sub: str, scope: str, ext_type: str) -> dict[str, Any]:
        self._subscription(sub)
        catalog: Mapping[str, Any] = self._doc.get("extensionTypeVersions") or {}
        name = next((str(k) for k in catalog if str(k).lower() == ext_type.lower()), None)
        if name is None:
            raise e.ResourceNotFound(f"Extension type '{ext_type}' was not found.")
        return self._type_json(scope, name)

    def extension_type_versions(
        self, sub: str, scope: str, ext_type: str, query: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The versions of one release train (``releaseTrain``, Stable by default)."""
        self._subscription(sub)
        trains = self._trains(ext_type, scope)
        wanted = (query.get("releaseTrain") or "Stable").lower()
        versions = next((vs for t, vs in trains.items() if t.lower() == wanted), [])
        major = query.get("majorVersion")
        if major:
            versions = [v for v in versions if v.lstrip("v").split(".")[0] == major.lstrip("v")]
        if str(query.get("showLatest", "")).lower() == "true" and versions:
            versions = [max(versions, key=version_key)]
        return [self._version_json(scope, ext_type, v) for v in versions]

    def extension_type_version(
        self, sub: str, scope: str, ext_type: str, version: str
    ) -> dict[str, Any]:
        self._subscription(sub)
        trains = self._trains(ext_type, scope)
        if not any(version in vs for vs in trains.values()):
            raise e.ResourceNotFound(
                f"Version '{version}' of extension type '{ext_type}' was not found."
            )
        return self._version_json(scope, ext_type, version)

    def _type_json(self, scope: str, name: str) -> dict[str, Any]:
        seeded = (self._doc.get("extensionTypes") or {}).get(name)
        props = (
            dict(seeded["properties"])
            if isinstance(seeded, Mapping) and isinstance(seeded.get("properties"), Mapping)
            else _type_properties(name)
        )
        rid = f"{scope}/extensionTypes/{name}"
        return {
            "id": rid,
            "name": name,
            "type": f"{KC_PROVIDER}/extensionTypes",
            "properties": props,
        }

    def _version_json(self, scope: str, ext_type: str, version: str) -> dict[str, Any]:
        rid = f"{scope}/extensionTypes/{ext_type}/versions/{version}"
        return {
            "id": rid,
            "name": version,
            "type": f"{KC_PROVIDER}/extensionTypes/versions",
            "properties": {
                "version": version,
                "supportedClusterTypes": ["connectedCluster", "managedCluster"],
                "unsupportedKubernetesVersions": {
                    "connectedCluster": [],
                    "appliances": [],
                    "provisionedCluster": [],
                    "managedCluster": [],
                },
                "isFipsCompliant": False,
            },
        }


def _type_properties(name: str) -> dict[str, Any]:
    namespace = _NAMESPACES.get(name.lower(), name.lower().replace(".", "-"))
    return {
        "description": f"The {name} cluster extension.",
        "publisher": "Microsoft",
        "isSystemExtension": False,
        "isManagedIdentityRequired": False,
        "supportedClusterTypes": list(_CLUSTER_TYPES),
        "supportedScopes": {
            "defaultScope": "cluster",
            "clusterScopeSettings": {
                "id": f"/providers/{KC_PROVIDER}/extensionTypes/{name}/clusterScopeSettings",
                "name": "clusterScopeSettings",
                "type": f"{KC_PROVIDER}/extensionTypes/clusterScopeSettings",
                "properties": {
                    "allowMultipleInstances": False,
                    "defaultReleaseNamespace": namespace,
                },
            },
        },
        "supportedRegions": ["westeurope", "northeurope", "eastus", "westus2"],
    }

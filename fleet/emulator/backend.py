"""The emulated Azure: the one object the HTTP layer talks to.

``Backend`` holds the resources of a fleet snapshot and answers what ARM and the
Microsoft.KubernetesConfiguration resource provider would: reads, PUT/PATCH/DELETE with
long-running operations, lists, Resource Graph rows. It knows nothing of HTTP (responses.py
turns its results into responses) and is only ever called from the server's event-loop thread,
so it needs no locks. It is made of one layer per job, each in its own module:

- store.py: the resources, their indexes and lookups, the snapshot document;
- lro.py: long-running operations, the emulated clock's due work, Flux reconciliation;
- reads.py: GETs, lists and their pages, Resource Graph rows;
- catalog.py: the extension types and their versions (2022-01-15-preview and 2026-05-01);
- maintenance.py: AKS clusters' planned maintenance configurations;
- writes.py: PUT, PATCH and DELETE, with ARM's body rules (rules.py) and the read-only
  properties the resource provider fills in (shapes.py);
- here: the admin operations that span them (the version catalogue, a release published to
  some regions (regions.py), and the auto-upgrade that follows),
  and the Key Vaults of the snapshot (vaults.py; served by keyvault.py).

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

Time is emulated (clock.py): a test can let 48 hours pass instantly, and due work is settled
lazily by ``tick()`` at the start of each request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.emulator import errors as e
from fleet.emulator import regions
from fleet.emulator.catalog import Catalog
from fleet.emulator.clock import Clock
from fleet.emulator.maintenance import Maintenance
from fleet.emulator.options import EmulatorOptions
from fleet.emulator.reads import Reads
from fleet.emulator.rules import disconnected, power_stopped, target_version
from fleet.emulator.stats import Stats
from fleet.emulator.vaults import Vaults
from fleet.emulator.writes import Writes


class Backend(Reads, Writes, Catalog, Maintenance):
    """In-memory ARM for one fleet snapshot."""

    def __init__(
        self,
        snapshot: Mapping[str, Any],
        options: EmulatorOptions | None = None,
        *,
        stats: Stats | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(snapshot, options, stats=stats, clock=clock)
        self.vaults = Vaults(snapshot.get("vaults"), self.clock.now)

    def dump(self) -> dict[str, Any]:
        """The snapshot, with the vaults' versions but none of their values."""
        out = super().dump()
        if self.vaults or "vaults" in out:
            out["vaults"] = self.vaults.dump()
        return out

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
        return self._auto_upgrade()

    def publish_release(self, payload: Any) -> dict[str, Any]:
        """Publish a release to some locations (``regions.publish``); auto-upgrading extensions
        of clusters there move to it. Returns the catalogue, its regions and who moved."""
        try:
            sections = regions.publish(self._doc, payload, self.clock.now())
        except ValueError as exc:
            raise e.InvalidRequestContent(str(exc)) from None
        self._set_catalog(sections["extensionTypeVersions"])
        return {**sections, "upgraded": self._auto_upgrade()}

    def _auto_upgrade(self) -> list[str]:
        """Move every auto-upgrading extension to its train's newest release in its location."""
        moved: list[str] = []
        for ckey, kinds in self._children.items():
            cluster = self._clusters.get(ckey)
            if cluster is None or disconnected(cluster) or power_stopped(cluster):
                continue  # an agent that cannot reach Azure does not upgrade
            for key in kinds.get("extensions", {}).values():
                res = self._resources[key]
                props = res.get("properties") or {}
                if not props.get("autoUpgradeMinorVersion", True):
                    continue
                if props.get("provisioningState") != "Succeeded":
                    continue
                trains = self._trains_for(key, props)
                version, problem = target_version(trains, props)
                if version and not problem and version != props.get("currentVersion"):
                    props["currentVersion"] = version
                    moved.append(str(res["id"]))
        return moved

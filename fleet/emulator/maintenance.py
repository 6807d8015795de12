"""AKS planned maintenance: a managed cluster's ``maintenanceConfigurations`` as ARM serves them.

``GET .../managedClusters/{name}/maintenanceConfigurations[/{config}]``, ``PUT`` and ``DELETE``
of one configuration (synchronous, as in AKS: 200 with the resource; DELETE 200, or 204 when it
was not there). A configuration is a child resource of the cluster kept in the snapshot as ARM
returns it (``Microsoft.ContainerService/managedClusters/maintenanceConfigurations``), so a
snapshot carries it and an export gives it back. The emulator stores what it is given and
checks only what AKS refuses outright: a body without ``properties``, a ``maintenanceWindow``
without exactly one schedule, or a ``durationHours`` outside 4..24.
"""

from __future__ import annotations

from typing import Any

from fleet.emulator import errors as e
from fleet.emulator.clock import iso
from fleet.emulator.lro import Lro
from fleet.emulator.snapshot import MAINTENANCE_TYPE
from fleet.emulator.store import ClusterRef, key_of

#: The api-versions served (``azure-mgmt-containerservice`` 41 sends 2026-08-01).
MAINTENANCE_VERSIONS = ("2024-05-01", "2025-10-01", "2026-08-01")
_SCHEDULES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly")


class Maintenance(Lro):
    """The maintenance configurations of managed clusters."""

    def list_maintenance(self, ref: ClusterRef) -> list[dict[str, Any]]:
        cluster = self._cluster(ref, nested=True)
        keys = self._maintenance.get(key_of(cluster["id"]), {})
        return [self._resources[k] for _, k in sorted(keys.items())]

    def get_maintenance(self, ref: ClusterRef, name: str) -> dict[str, Any]:
        cluster = self._cluster(ref, nested=True)
        found = self._maintenance.get(key_of(cluster["id"]), {}).get(name.lower())
        if found is None:
            raise e.ResourceNotFound(
                f"The Resource '{MAINTENANCE_TYPE}/{name}' under resource group "
                f"'{ref.resource_group}' was not found."
            )
        return self._resources[found]

    def put_maintenance(
        self, ref: ClusterRef, name: str, body: Any, principal: str
    ) -> dict[str, Any]:
        cluster = self._cluster(ref, nested=True)
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise e.InvalidRequestContent("The request content must carry 'properties'.")
        _check_window(props.get("maintenanceWindow"))
        existing = self._maintenance.get(key_of(cluster["id"]), {}).get(name.lower())
        now = iso(self.clock.now())
        if existing is not None:
            res = self._resources[existing]
            res["properties"] = props
            res.setdefault("systemData", {}).update(lastModifiedBy=principal, lastModifiedAt=now)
            return res
        res = {
            "id": f"{cluster['id']}/maintenanceConfigurations/{name}",
            "name": name,
            "type": MAINTENANCE_TYPE,
            "properties": props,
            "systemData": {"createdBy": principal, "createdAt": now, "lastModifiedAt": now},
        }
        self._index(res)
        return res

    def delete_maintenance(self, ref: ClusterRef, name: str) -> bool:
        """True when the configuration existed."""
        cluster = self._cluster(ref, nested=True)
        found = self._maintenance.get(key_of(cluster["id"]), {}).get(name.lower())
        if found is None:
            return False
        self._unindex(found)
        return True


def _check_window(window: Any) -> None:
    if window is None:
        return
    if not isinstance(window, dict):
        raise e.InvalidRequestContent("'maintenanceWindow' must be an object.")
    schedule = window.get("schedule")
    given = [k for k in _SCHEDULES if isinstance(schedule, dict) and schedule.get(k)]
    if len(given) != 1:
        raise e.BadRequest(
            "One and only one of the schedule types should be specified: daily, weekly, "
            "absoluteMonthly or relativeMonthly."
        )
    hours = window.get("durationHours")
    if not isinstance(hours, int) or isinstance(hours, bool) or not 4 <= hours <= 24:
        raise e.BadRequest("durationHours must be between 4 and 24.")
    if not isinstance(window.get("startTime"), str):
        raise e.BadRequest("startTime is required ('HH:mm').")

"""The ARM api-versions fleet speaks, in one place.

fleet reads and writes each resource type with the newest stable api-version it knows, named
here rather than taken from an SDK package's default, so that upgrading a package never moves
fleet to another wire format unseen (and the emulator, which serves these side by side with
2023-05-01, is tested against exactly these). The same versions are used against Azure and
against the emulator; only the endpoint differs.

- ``FLUX_CONFIGURATIONS``: Flux v2 configurations, through
  ``azure-mgmt-kubernetesconfiguration-fluxconfigurations`` (whose only version it is);
- ``EXTENSIONS``: cluster extensions, through ``azure-mgmt-kubernetesconfiguration-extensions``;
- ``SOURCE_CONTROL_CONFIGURATIONS``: Flux v1, read and deleted only, through the multi-API
  ``azure-mgmt-kubernetesconfiguration`` (2023-05-01 is its newest);
- ``EXTENSION_TYPES``: the version catalogue ``extensionTypes/{type}/versions``, sent through
  the extensions client's pipeline (no SDK package speaks 2026-05-01; the
  ``extensiontypes`` package is a 2024-11-01-preview beta);
- ``RESOURCES``: the generic resource list of ``azure-mgmt-resource``;
- ``MAINTENANCE_CONFIGURATIONS``: an AKS cluster's planned maintenance, read only, through
  ``azure-mgmt-containerservice``'s ``maintenance_configurations`` operations (when a policy
  says ``respectAksMaintenance``);
- ``CLUSTERS``: the generic GET of each cluster kind (both return the properties fleet reads:
  powerState/agentPoolProfiles, connectivityStatus/lastConnectivityTime).
"""

from __future__ import annotations

FLUX_CONFIGURATIONS = "2025-04-01"
EXTENSIONS = "2025-03-01"
SOURCE_CONTROL_CONFIGURATIONS = "2023-05-01"
EXTENSION_TYPES = "2026-05-01"
RESOURCES = "2025-04-01"
MAINTENANCE_CONFIGURATIONS = "2026-08-01"
CLUSTERS = {
    "managedClusters": "2024-05-01",
    "connectedClusters": "2024-01-01",
}

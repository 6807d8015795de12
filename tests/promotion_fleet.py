"""The promotion fleet of docs/promotion.md, shared by the local-engine and Celery tests.

Six AKS clusters in two regions (westeurope, eastus), one per wave and region: ring 0 is the
canary wave, ring 1 the early wave, ring 2 falls to the broad wave. Each runs microsoft.flux
1.17.2 with auto-upgrade on, as before promotion was turned on; the catalogue's newest Stable
release is 1.17.2 until a test publishes 1.17.3 to one region, then the other.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from fleet.emulator.generate import generate
from fleet.emulator.testing import AdminClient

SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-promote"
AKS = "Microsoft.ContainerService/managedClusters"
EXT = "Microsoft.KubernetesConfiguration/extensions"
FLUX = "Microsoft.KubernetesConfiguration/fluxConfigurations"
REGIONS = {"we": "westeurope", "us": "eastus"}
#: cluster name -> (location, ring)
CLUSTERS = {f"aks-{r}-{ring}": (loc, str(ring)) for r, loc in REGIONS.items() for ring in range(3)}
OLD, NEW = "1.17.2", "1.17.3"
T0 = "2027-01-04T10:00:00Z"

POLICY = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: promoted
spec:
  mode: enforce
  priority: 100
  targets:
    subscriptions: ["*"]
  extension:
    name: flux
    releaseTrain: Stable
    versionPolicy: promote
    promotion:
      soak: 24h
  fluxConfigurations:
    - name: apps
      scope: cluster
      namespace: apps
      gitRepository:
        url: https://github.com/fleet-examples/promoted-apps
        repositoryRef: {branch: main}
      kustomizations:
        apps: {path: ./apps, prune: true}
  remediation:
    rollout:
      failureBudget: 0
      waves:
        - {name: canary, selector: {tags: {ring: "0"}}}
        - {name: early, selector: {tags: {ring: "1"}}}
        - {name: broad, percent: 100}
"""


def cluster_id(name: str) -> str:
    return f"{RG}/providers/{AKS}/{name}"


def snapshot() -> dict[str, Any]:
    """The fleet: generated subscription and cluster shape, six hand-placed clusters."""
    base = generate(clusters=2, subscriptions=1, seed=5)
    template = next(r for r in base["resources"] if r["type"] == AKS)
    resources: list[dict[str, Any]] = [
        {
            "id": RG,
            "type": "Microsoft.Resources/resourceGroups",
            "name": "rg-promote",
            "location": "westeurope",
            "tags": {},
            "properties": {"provisioningState": "Succeeded"},
        }
    ]
    for name, (location, ring) in CLUSTERS.items():
        cluster = copy.deepcopy(template)
        cluster.update(id=cluster_id(name), name=name, location=location, tags={"ring": ring})
        cluster["properties"]["powerState"] = {"code": "Running"}
        cluster["properties"].pop("fqdn", None)
        resources.append(cluster)
        resources.append(
            {
                "id": f"{cluster_id(name)}/providers/{EXT}/flux",
                "type": EXT,
                "name": "flux",
                "systemData": {
                    "createdBy": "ops@contoso.com",
                    "createdByType": "User",
                    "createdAt": "2026-10-01T00:00:00Z",
                    "lastModifiedBy": "ops@contoso.com",
                    "lastModifiedByType": "User",
                    "lastModifiedAt": "2026-10-01T00:00:00Z",
                },
                "properties": {
                    "extensionType": "microsoft.flux",
                    "autoUpgradeMinorVersion": True,
                    "releaseTrain": "Stable",
                    "version": None,
                    "scope": {"cluster": {"releaseNamespace": "flux-system"}},
                    "configurationSettings": {},
                    "currentVersion": OLD,
                    "provisioningState": "Succeeded",
                    "statuses": [],
                    "isSystemExtension": False,
                },
            }
        )
    return {
        "kind": base["kind"],
        "subscriptions": base["subscriptions"],
        "extensionTypeVersions": {
            "microsoft.flux": {"Stable": [OLD, "1.17.1", "1.16.12", "1.16.3", "1.15.2"]}
        },
        "resources": resources,
    }


def versions(snap: dict[str, Any]) -> dict[str, tuple[str | None, bool | None]]:
    """cluster name -> (currentVersion, autoUpgradeMinorVersion) of its flux extension."""
    out = {}
    for r in snap["resources"]:
        if r["type"] == EXT:
            name = r["id"].split("/")[8]
            props = r["properties"]
            out[name] = (props.get("currentVersion"), props.get("autoUpgradeMinorVersion"))
    return out


def flux_config(snap: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        r for r in snap["resources"] if r["type"] == FLUX and r["id"].split("/")[8] == name
    )
    return found


def failing(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration as the emulator serves a failing Flux object: Non-Compliant."""
    broken = copy.deepcopy(config)
    broken["properties"]["complianceState"] = "Non-Compliant"
    return broken


def healthy(config: dict[str, Any]) -> dict[str, Any]:
    fixed = copy.deepcopy(config)
    fixed["properties"]["complianceState"] = "Compliant"
    return fixed


def at(admin: AdminClient, hours: float) -> None:
    """Set the emulated clock to ``hours`` after T0, and let every cluster's Flux agent report
    as a working agent does (``statusUpdatedAt`` now, whatever it reports): without a report the
    canary's status would be stale after six hours, and a stale status holds a promotion too."""
    start = datetime.fromisoformat(T0.replace("Z", "+00:00"))
    now = admin.set_clock(start + timedelta(hours=hours))
    for resource in admin.snapshot()["resources"]:
        if resource["type"] == FLUX:
            reported = copy.deepcopy(resource)
            reported["properties"]["statusUpdatedAt"] = now.isoformat().replace("+00:00", "Z")
            admin.put_resource(reported)

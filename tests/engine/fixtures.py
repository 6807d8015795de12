"""Builders for engine tests: the scenario's policies, cluster facts and realistic ARM JSON.

The ARM JSON is modelled on the 2023-05-01 examples ``GetExtension.json`` and
``GetFluxConfiguration.json``: every default filled in, read-only status and noise present, so
that tests exercise the essence exactly as a real GET would.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.core.clusters import ClusterFacts
from fleet.core.ids import child_id
from fleet.emulator import scenario
from fleet.evaluate.versions import Catalog
from fleet.observe.essence import EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS
from fleet.observe.observed import ObservedCluster
from fleet.plan.pipeline import Judgement, judge
from fleet.policy.models import Exemption, Policy
from fleet.select.selection import Applicable

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-000000000001"

# The catalogue and the example configuration bodies are the scenario's (docs/scenario.md),
# stated once in ``fleet.emulator.scenario``.
STABLE = list(scenario.STABLE_VERSIONS)
PREVIEW = list(scenario.PREVIEW_VERSIONS)
CATALOG = Catalog.from_mapping({"Stable": STABLE, "Preview": PREVIEW})


def policy(name: str, *, mode: str = "enforce", priority: int = 0, **spec: Any) -> Policy:
    """A policy from a camelCase spec (``extension=...``, ``fluxConfigurations=[...]``...)."""
    return Policy.model_validate(
        {
            "apiVersion": "fleet/v1",
            "kind": "FluxPolicy",
            "metadata": {"name": name},
            "spec": {"mode": mode, "priority": priority, **spec},
        }
    )


def _declared(name: str) -> dict[str, Any]:
    # A deep copy: tests edit these bodies, and the emulator's generator reads the originals.
    return {"name": name, **copy.deepcopy(scenario.FLUX_CONFIGS[name])}


CLUSTER_CONFIG = _declared(scenario.CLUSTER_CONFIG)
TEAM_ALPHA = _declared(scenario.TEAM_ALPHA)
EDGE_BASELINE = _declared(scenario.EDGE_BASELINE)


def baseline(**remediation: Any) -> Policy:
    return policy(
        "platform-baseline",
        priority=100,
        extension={
            "name": "flux",
            "autoUpgradeMinorVersion": True,
            "releaseTrain": "Stable",
            "configurationSettings": {"multiTenancy.enforce": "true"},
            "versionWindow": 2,
        },
        remediation=remediation,
    )


#: The extension body ``baseline()`` renders (what a PUT of a missing extension sends).
BASELINE_BODY: dict[str, Any] = {
    "properties": {
        "extensionType": "microsoft.flux",
        "scope": {"cluster": {"releaseNamespace": "flux-system"}},
        "autoUpgradeMinorVersion": True,
        "releaseTrain": "Stable",
        "configurationSettings": {"multiTenancy.enforce": "true"},
    }
}


def cluster_config(**remediation: Any) -> Policy:
    return policy(
        "cluster-config", priority=50, fluxConfigurations=[CLUSTER_CONFIG], remediation=remediation
    )


def team_alpha() -> Policy:
    return policy("team-alpha", priority=50, fluxConfigurations=[TEAM_ALPHA])


def arc_edge() -> Policy:
    return policy("arc-edge", priority=60, fluxConfigurations=[EDGE_BASELINE])


def version_audit() -> Policy:
    return policy("flux-version-audit", mode="audit", priority=200, extension={"versionWindow": 1})


def shared_tenancy() -> Policy:
    return policy(
        "shared-tenancy",
        priority=100,
        extension={"configurationSettings": {"multiTenancy.enforce": "false"}},
    )


def applicable(*policies: Policy, exempt: dict[str, Exemption] | None = None) -> list[Applicable]:
    exempt = exempt or {}
    return [Applicable(p, exempt.get(p.name)) for p in policies]


def judged(observed: ObservedCluster, *policies: Policy, **kw: Any) -> Judgement:
    """``observed`` judged against ``policies`` (none exempt) at the scenario's clock."""
    return judge(observed, applicable(*policies), catalog=CATALOG, now=NOW, **kw)


def aks(
    name: str = "aks-prod-00001",
    *,
    power: str = "Running",
    arm64: bool = False,
    tags: dict[str, str] | None = None,
    rg: str = "rg-prod-weu-1",
) -> ClusterFacts:
    return ClusterFacts(
        id=f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/"
        f"Microsoft.ContainerService/managedClusters/{name}",
        name=name,
        cluster_type="managedClusters",
        subscription_id=SUB,
        resource_group=rg,
        location="westeurope",
        tags=tags if tags is not None else {"env": "prod"},
        power_state=power,
        arm64=arm64,
        # AKS says through its agent pools (fleet.core.clusters.architecture_of).
        architecture="arm64" if arm64 else "amd64",
        kubernetes_version="1.30.4",
    )


def arc(
    name: str = "arc-prod-00001",
    *,
    status: str = "Connected",
    last: datetime | None = None,
    arm64: bool = False,
) -> ClusterFacts:
    return ClusterFacts(
        id=f"/subscriptions/{SUB}/resourceGroups/rg-edge-1/providers/"
        f"Microsoft.Kubernetes/connectedClusters/{name}",
        name=name,
        cluster_type="connectedClusters",
        subscription_id=SUB,
        resource_group="rg-edge-1",
        location="westeurope",
        tags={"env": "prod"},
        connectivity_status=status,
        last_connectivity_time=last or NOW - timedelta(minutes=5),
        arm64=arm64,
        # connectedClusters has no architecture property: unknown unless tagged.
        architecture="arm64" if arm64 else None,
    )


_SYSTEM_DATA = {
    "createdBy": "fleet",
    "createdByType": "Application",
    "createdAt": "2026-09-08T05:10:57Z",
    "lastModifiedBy": "fleet",
    "lastModifiedByType": "Application",
    "lastModifiedAt": "2026-09-08T05:10:57Z",
}


def extension_json(
    cluster_id: str,
    *,
    name: str = "flux",
    current: str | None = "1.17.3",
    settings: dict[str, str] | None = None,
    **props: Any,
) -> dict[str, Any]:
    """A GET of the flux extension with every default and read-only field filled in."""
    body = {
        "extensionType": "microsoft.flux",
        "autoUpgradeMinorVersion": True,
        "releaseTrain": "Stable",
        "version": None,
        "scope": {"cluster": {"releaseNamespace": "flux-system"}},
        "configurationSettings": {"multiTenancy.enforce": "true", **(settings or {})},
        "provisioningState": "Succeeded",
        "currentVersion": current,
        "statuses": [],
        "isSystemExtension": False,
        "customLocationSettings": None,
        "packageUri": None,
        "errorInfo": None,
        "aksAssignedIdentity": {"principalId": "p", "tenantId": "t", "type": "SystemAssigned"},
    }
    body.update(props)
    return {
        "id": child_id(cluster_id, EXTENSIONS, name),
        "type": "Microsoft.KubernetesConfiguration/extensions",
        "name": name,
        "systemData": dict(_SYSTEM_DATA),
        "identity": {"principalId": "pp", "tenantId": "tt", "type": "SystemAssigned"},
        "plan": None,
        "properties": body,
    }


def _kustomization(name: str, body: dict[str, Any]) -> dict[str, Any]:
    out = {
        "name": name,
        "path": "",
        "dependsOn": [],
        "timeoutInSeconds": 600,
        "syncIntervalInSeconds": 600,
        "retryIntervalInSeconds": None,
        "prune": False,
        "force": False,
        "wait": True,
        "postBuild": None,
    }
    out.update(copy.deepcopy(body))
    return out


def flux_json(cluster_id: str, spec: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """What ARM returns for a flux configuration created from ``spec`` (a policy body)."""
    spec = copy.deepcopy(spec)
    name = spec.pop("name")
    git = spec.get("gitRepository")
    props: dict[str, Any] = {
        "scope": "cluster",
        "namespace": "default",
        "sourceKind": "GitRepository",
        "suspend": False,
        "gitRepository": None,
        "bucket": None,
        "azureBlob": None,
        "kustomizations": {},
        "waitForReconciliation": None,
        "reconciliationWaitDuration": None,
        "statuses": [
            {
                "name": name,
                "namespace": spec.get("namespace", "default"),
                "kind": "GitRepository",
                "complianceState": "Compliant",
                "appliedBy": None,
                "helmReleaseProperties": None,
                "statusConditions": [
                    {
                        "lastTransitionTime": "2026-11-25T11:00:00Z",
                        "message": "Fetched revision: main/0ba6f0d",
                        "reason": "GitOperationSucceed",
                        "status": "True",
                        "type": "Ready",
                    }
                ],
            },
        ],
        "repositoryPublicKey": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDiNkrANrht",
        "sourceSyncedCommitId": "main/0ba6f0d30760d567de0bac86c8c4eec13ce1a590",
        "sourceUpdatedAt": "2026-11-25T11:00:00Z",
        "statusUpdatedAt": "2026-11-25T11:00:00Z",
        "complianceState": "Compliant",
        "provisioningState": "Succeeded",
        "errorMessage": "",
        "configurationProtectedSettings": None,
    }
    for k, v in spec.items():
        if k in ("kustomizations", "gitRepository", "configurationProtectedSettings"):
            continue
        props[k] = v
    if git is not None:
        ref = {"branch": None, "tag": None, "semver": None, "commit": None}
        ref.update(git.get("repositoryRef", {}))
        props["gitRepository"] = {
            "url": git["url"],
            "timeoutInSeconds": 600,
            "syncIntervalInSeconds": 600,
            "sshKnownHosts": None,
            "httpsUser": None,
            "httpsCACert": None,
            "localAuthRef": None,
            **{k: v for k, v in git.items() if k != "repositoryRef"},
            "repositoryRef": ref,
        }
    props["kustomizations"] = {
        k: _kustomization(k, v) for k, v in (spec.get("kustomizations") or {}).items()
    }
    props.update(overrides)
    return {
        "id": child_id(cluster_id, FLUX_CONFIGURATIONS, name),
        "type": "Microsoft.KubernetesConfiguration/fluxConfigurations",
        "name": name,
        "systemData": dict(_SYSTEM_DATA),
        "properties": props,
    }


def flux_v1_json(cluster_id: str, name: str = "legacy-v1") -> dict[str, Any]:
    return {
        "id": child_id(cluster_id, SOURCE_CONTROL_CONFIGURATIONS, name),
        "type": "Microsoft.KubernetesConfiguration/sourceControlConfigurations",
        "name": name,
        "properties": {
            "repositoryUrl": "git@github.com:contoso/legacy.git",
            "operatorNamespace": "legacy",
            "operatorInstanceName": "legacy",
            "operatorType": "Flux",
            "operatorScope": "cluster",
            "provisioningState": "Succeeded",
            "complianceStatus": {"complianceState": "Installed"},
        },
    }


def observe(
    facts: ClusterFacts,
    *,
    extensions: list[dict[str, Any]] | None = None,
    configs: list[dict[str, Any]] | None = None,
    v1: list[dict[str, Any]] | None = None,
    read_error: str | None = None,
) -> ObservedCluster:
    return ObservedCluster(
        facts=facts,
        extensions=tuple(extensions or ()),
        flux_configurations=tuple(configs or ()),
        source_control_configurations=tuple(v1 or ()),
        read_error=read_error,
    )


def compliant(facts: ClusterFacts, *specs: dict[str, Any], **ext: Any) -> ObservedCluster:
    """A cluster carrying exactly the baseline extension and the given configurations."""
    return observe(
        facts,
        extensions=[extension_json(facts.id, **ext)],
        configs=[flux_json(facts.id, s) for s in specs],
    )

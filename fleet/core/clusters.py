"""Cluster facts: what selection and evaluation need to know about an AKS or Arc cluster.

``facts_from_arm`` turns the ARM JSON of a ``managedClusters`` or ``connectedClusters``
resource (as the SDK, Resource Graph or a fleet snapshot returns it) into ``ClusterFacts``.
It is pure, so the inventory from ARM, from Resource Graph and from a snapshot all agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from fleet.core.ids import ClusterId, ClusterType, cluster_type_of

#: Arm-based VM families (Dps/Dpls/Dpds/Dplds/Eps/Epds, v5 and later), e.g. Standard_D4ps_v5.
_ARM_VM_SIZE = re.compile(r"^standard_[de]\d+p[a-z]*_v\d+$", re.IGNORECASE)
_ARM_WORDS = {"arm64", "aarch64"}


class ClusterFacts(BaseModel):
    """One cluster in the inventory. Frozen: selection and evaluation never change it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    cluster_type: ClusterType
    subscription_id: str
    resource_group: str
    location: str = ""
    tags: dict[str, str] = {}
    #: AKS ``powerState.code`` (``Running`` / ``Stopped``); None for Arc.
    power_state: str | None = None
    #: Arc ``connectivityStatus`` (Connected, Connecting, Offline, Expired, AgentNotInstalled).
    connectivity_status: str | None = None
    #: Arc ``lastConnectivityTime``.
    last_connectivity_time: datetime | None = None
    #: True when any agent pool (AKS) or the cluster (Arc) runs on arm64.
    arm64: bool = False
    #: ``arm64`` or ``amd64`` when ARM says (AKS agent pools, an Arc ``arch`` property or tag);
    #: None when it cannot be told (connectedClusters has no architecture property).
    architecture: str | None = None
    #: Arc ``managedIdentityCertificateExpirationTime`` (the agents' certificate).
    certificate_expires: datetime | None = None
    #: ``registrationState`` of Microsoft.KubernetesConfiguration in the cluster's
    #: subscription, when the sweep read it (None: not read, assumed registered).
    provider_registration: str | None = None
    kubernetes_version: str | None = None
    distribution: str | None = None
    provisioning_state: str | None = None
    #: When these facts were read together with the cluster's ``properties`` (a resource
    #: provider's list-by-subscription). None: list-level facts only (generic resource list,
    #: a snapshot, ``of_id``), so the observer reads the cluster itself before judging it.
    listed_at: datetime | None = None

    @property
    def key(self) -> str:
        """Case-insensitive comparison key of the id."""
        return self.id.lower()

    @classmethod
    def of_id(cls, cluster_id: str) -> ClusterFacts:
        """Enough facts to address a cluster by id (a read fills in the rest)."""
        cid = ClusterId.parse(cluster_id)
        return cls(
            id=cluster_id,
            name=cid.name,
            cluster_type=cid.cluster_type,
            subscription_id=cid.subscription_id,
            resource_group=cid.resource_group,
        )


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_arm64(
    cluster_type: ClusterType, properties: Mapping[str, Any], tags: Mapping[str, str]
) -> bool:
    """docs/contracts.md, Fleet snapshot: Arm VM sizes or osSKU on AKS; ``properties.arch`` or the
    arch tag on Arc."""
    if str(tags.get("kubernetes.io/arch", "")).lower() in _ARM_WORDS:
        return True
    if cluster_type == "connectedClusters":
        return str(properties.get("arch") or "").lower() in _ARM_WORDS
    for pool in properties.get("agentPoolProfiles") or ():
        if not isinstance(pool, Mapping):
            continue
        if _ARM_VM_SIZE.match(str(pool.get("vmSize") or "")):
            return True
        if "arm64" in str(pool.get("osSKU") or "").lower():
            return True
    return False


def architecture_of(
    cluster_type: ClusterType, properties: Mapping[str, Any], tags: Mapping[str, str]
) -> str | None:
    """``arm64``, ``amd64``, or None when ARM does not say (docs/contracts.md, Fleet snapshot).

    AKS says through its agent pools (when the read carried them); an Arc cluster only through
    the emulator's ``properties.arch`` or the ``kubernetes.io/arch`` tag, which real
    connectedClusters usually lack: then the architecture is unknown, never "not arm64".
    """
    if is_arm64(cluster_type, properties, tags):
        return "arm64"
    declared = str(tags.get("kubernetes.io/arch") or properties.get("arch") or "").lower()
    if declared:
        return "amd64" if declared in ("amd64", "x86_64", "x64") else declared
    pools = properties.get("agentPoolProfiles")
    if cluster_type == "managedClusters" and isinstance(pools, list) and pools:
        return "amd64"
    return None


def facts_from_arm(resource: Mapping[str, Any]) -> ClusterFacts:
    """Build facts from a cluster's ARM JSON. Raises ValueError when it is not a cluster."""
    rid = str(resource["id"])
    cid = ClusterId.parse(rid)
    ctype = cluster_type_of(str(resource.get("type") or "")) or cid.cluster_type
    props = resource.get("properties") or {}
    if not isinstance(props, Mapping):
        raise ValueError(f"{rid}: properties is not an object")
    raw_tags = resource.get("tags") or {}
    tags = {str(k): str(v) for k, v in raw_tags.items()} if isinstance(raw_tags, Mapping) else {}
    power = props.get("powerState")
    return ClusterFacts(
        id=rid,
        name=str(resource.get("name") or cid.name),
        cluster_type=ctype,
        subscription_id=cid.subscription_id,
        resource_group=cid.resource_group,
        location=str(resource.get("location") or ""),
        tags=tags,
        power_state=str(power.get("code"))
        if isinstance(power, Mapping) and power.get("code")
        else None,
        connectivity_status=(
            str(props["connectivityStatus"]) if props.get("connectivityStatus") else None
        ),
        last_connectivity_time=_parse_time(props.get("lastConnectivityTime")),
        arm64=is_arm64(ctype, props, tags),
        architecture=architecture_of(ctype, props, tags),
        certificate_expires=_parse_time(props.get("managedIdentityCertificateExpirationTime")),
        kubernetes_version=(
            str(props.get("currentKubernetesVersion") or props.get("kubernetesVersion") or "")
            or None
        ),
        distribution=str(props["distribution"]) if props.get("distribution") else None,
        provisioning_state=str(props["provisioningState"])
        if props.get("provisioningState")
        else None,
    )

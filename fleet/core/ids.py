"""ARM resource ids: parsing, canonical casing, and the two cluster kinds fleet manages.

ARM treats provider namespaces, resource types and resource group names case-insensitively
and echoes ids in whatever case they were created with. fleet compares ids by their
``key()`` (lower-cased) and prints them in canonical case, so a snapshot exported from a real
tenant and one written by hand select and diff the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ClusterType = Literal["managedClusters", "connectedClusters"]

#: ARM provider/type of each cluster kind, in canonical case.
CLUSTER_PROVIDERS: dict[ClusterType, str] = {
    "managedClusters": "Microsoft.ContainerService/managedClusters",
    "connectedClusters": "Microsoft.Kubernetes/connectedClusters",
}
_TYPE_BY_ARM_TYPE = {v.lower(): k for k, v in CLUSTER_PROVIDERS.items()}

KC_PROVIDER = "Microsoft.KubernetesConfiguration"
EXTENSIONS = f"{KC_PROVIDER}/extensions"
FLUX_CONFIGURATIONS = f"{KC_PROVIDER}/fluxConfigurations"
SOURCE_CONTROL_CONFIGURATIONS = f"{KC_PROVIDER}/sourceControlConfigurations"
RESOURCE_GROUPS = "Microsoft.Resources/resourceGroups"

#: Canonical spelling of the Microsoft.KubernetesConfiguration child types, keyed by lower case.
CHILD_TYPES = {
    t.lower(): t for t in (EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS)
}
_CHILD_SEGMENT = {t.split("/")[1].lower(): t.split("/")[1] for t in CHILD_TYPES.values()}


class InvalidResourceId(ValueError):
    """Raised when a string is not an ARM id of the expected shape."""


def cluster_type_of(arm_type: str) -> ClusterType | None:
    """``Microsoft.ContainerService/managedClusters`` (any case) -> ``managedClusters``."""
    return _TYPE_BY_ARM_TYPE.get(arm_type.lower())


def key(resource_id: str) -> str:
    """The comparison key of an ARM id: ARM ids are case-insensitive."""
    return resource_id.rstrip("/").lower()


@dataclass(frozen=True, slots=True)
class ClusterId:
    """The parts of an AKS or Arc cluster id."""

    subscription_id: str
    resource_group: str
    cluster_type: ClusterType
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> ClusterId:
        """Parse ``/subscriptions/S/resourceGroups/RG/providers/P/T/NAME`` (any case).

        Extra trailing segments (a child resource of the cluster) are ignored, so the cluster
        of an extension id can be found with ``ClusterId.parse(extension_id)``.
        """
        parts = resource_id.strip("/").split("/")
        if (
            len(parts) < 8
            or parts[0].lower() != "subscriptions"
            or parts[2].lower() != "resourcegroups"
            or parts[4].lower() != "providers"
        ):
            raise InvalidResourceId(f"not a cluster resource id: {resource_id!r}")
        ctype = cluster_type_of(f"{parts[5]}/{parts[6]}")
        if ctype is None:
            raise InvalidResourceId(
                f"not an AKS or Arc cluster id (type {parts[5]}/{parts[6]}): {resource_id!r}"
            )
        return cls(parts[1], parts[3], ctype, parts[7])

    def __str__(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{CLUSTER_PROVIDERS[self.cluster_type]}/{self.name}"
        )


def child_id(cluster_id: str, child_type: str, name: str) -> str:
    """Id of a Microsoft.KubernetesConfiguration child of a cluster.

    ``child_type`` may be the bare type (``extensions``) or the full one
    (``Microsoft.KubernetesConfiguration/extensions``); either way, in any case.
    """
    bare = child_type.rsplit("/", 1)[-1]
    segment = _CHILD_SEGMENT.get(bare.lower(), bare)
    return f"{cluster_id.rstrip('/')}/providers/{KC_PROVIDER}/{segment}/{name}"


def split_child(resource_id: str) -> tuple[str, str, str]:
    """Split a child id into (cluster id, canonical child type, child name).

    >>> arc = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters"
    >>> split_child(arc + "/c/providers/Microsoft.KubernetesConfiguration/extensions/flux")[1:]
    ('Microsoft.KubernetesConfiguration/extensions', 'flux')
    """
    marker = f"/providers/{KC_PROVIDER}/".lower()
    idx = resource_id.lower().rfind(marker)
    if idx < 0:
        raise InvalidResourceId(f"not a Microsoft.KubernetesConfiguration id: {resource_id!r}")
    rest = resource_id[idx + len(marker) :].strip("/").split("/")
    if len(rest) < 2:
        raise InvalidResourceId(f"no child type and name in {resource_id!r}")
    ctype = CHILD_TYPES.get(f"{KC_PROVIDER}/{rest[0]}".lower())
    if ctype is None:
        raise InvalidResourceId(
            f"unknown Microsoft.KubernetesConfiguration type in {resource_id!r}"
        )
    return resource_id[:idx], ctype, rest[1]

"""The fleet generator's tables: the defect kinds with their weights, and realistic values.

docs/scenario.md is the specification: each generated cluster gets one *defect kind*, drawn by
``KIND_WEIGHTS`` (``compliant`` for about 45 %), and the kind decides what the cluster carries
(generate_plan.py, generate_clusters.py, generate_configs.py). The value tables (Kubernetes
versions, VM sizes, Arc distributions, resource group families, ...) are drawn from with
cumulative weights, in a fixed order, so that one seed gives one fleet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import accumulate
from typing import Any, Final

from fleet.core.ids import ClusterType
from fleet.emulator import scenario as sc

Json = dict[str, Any]

MANAGED: Final[ClusterType] = "managedClusters"
CONNECTED: Final[ClusterType] = "connectedClusters"

# --- defect kinds (docs/scenario.md "Defect kinds") ---------------------------------------

COMPLIANT: Final = "compliant"
EXTENSION_MISSING: Final = "extension_missing"
EXTENSION_FAILED: Final = "extension_failed"
EXTENSION_DRIFT: Final = "extension_drift"
VERSION_OUT_OF_WINDOW: Final = "version_out_of_window"
ARM64_OLD_VERSION: Final = "arm64_old_version"
FLUX_CONFIG_MISSING: Final = "flux_config_missing"
BRANCH_DRIFT: Final = "branch_drift"
DEPENDS_ON_DRIFT: Final = "depends_on_drift"
EXTRA_KUSTOMIZATION: Final = "extra_kustomization"
FLUX_CONFIG_FAILED: Final = "flux_config_failed"
FLUX_CONFIG_NONCOMPLIANT: Final = "flux_config_noncompliant"
UNMANAGED_CONFIG: Final = "unmanaged_config"
FLUX_V1: Final = "flux_v1"
ARC_OFFLINE: Final = "arc_offline"
ARC_EXPIRED: Final = "arc_expired"
AKS_STOPPED: Final = "aks_stopped"
CONFLICT: Final = "conflict"
EXEMPT: Final = "exempt"
READ_ERROR: Final = "read_error"

#: Relative weight of each kind (percent). Compliant is 45 %; the rest is spread so that the
#: common real-world problems (stuck versions, missing extensions, offline edge sites) are
#: common here too. The order is the table order of docs/scenario.md.
KIND_WEIGHTS: Final[dict[str, float]] = {
    COMPLIANT: 45,
    EXTENSION_MISSING: 5,
    EXTENSION_FAILED: 2,
    EXTENSION_DRIFT: 3,
    VERSION_OUT_OF_WINDOW: 6,
    ARM64_OLD_VERSION: 1.5,
    FLUX_CONFIG_MISSING: 3,
    BRANCH_DRIFT: 4,
    DEPENDS_ON_DRIFT: 3,
    EXTRA_KUSTOMIZATION: 3,
    FLUX_CONFIG_FAILED: 2,
    FLUX_CONFIG_NONCOMPLIANT: 3,
    UNMANAGED_CONFIG: 4,
    FLUX_V1: 2,
    ARC_OFFLINE: 4,
    ARC_EXPIRED: 1.5,
    AKS_STOPPED: 2.5,
    CONFLICT: 2,
    EXEMPT: 2,
    READ_ERROR: 1.5,
}
KINDS: Final = tuple(KIND_WEIGHTS)

#: Kinds that only make sense on one cluster type.
ARC_ONLY: Final = frozenset({ARC_OFFLINE, ARC_EXPIRED})
AKS_ONLY: Final = frozenset({AKS_STOPPED, EXEMPT})
#: Kinds that change a declared flux configuration: the cluster must have one.
NEEDS_FLUX_CONFIG: Final = frozenset(
    {
        FLUX_CONFIG_MISSING,
        BRANCH_DRIFT,
        EXTRA_KUSTOMIZATION,
        FLUX_CONFIG_FAILED,
        FLUX_CONFIG_NONCOMPLIANT,
    }
)

#: About 30 % of the fleet is Arc. The Arc-only and AKS-only kinds fix their type, so the free
#: kinds are drawn with the probability that brings the total back to 30 %.
ARC_SHARE: Final = 0.30
# (Summed in KINDS order, never in set order: float sums must not depend on string hashing.)
FORCED_ARC = sum(KIND_WEIGHTS[k] for k in KINDS if k in ARC_ONLY) / 100
FREE = 1 - sum(KIND_WEIGHTS[k] for k in KINDS if k in ARC_ONLY | AKS_ONLY) / 100
P_ARC_FREE: Final = (ARC_SHARE - FORCED_ARC) / FREE

#: Share of each resource group family, per cluster type (Arc lives mostly at the edge).
AKS_FAMILIES: Final = (("prod", 45), ("stg", 25), ("dev", 30))
ARC_FAMILIES: Final = (("edge", 60), ("prod", 15), ("stg", 10), ("dev", 15))
#: The same, restricted to the groups ``cluster-config`` targets (for ``depends_on_drift``).
AKS_CONFIG_FAMILIES: Final = tuple(f for f in AKS_FAMILIES if f[0] in sc.CLUSTER_CONFIG_FAMILIES)
ARC_CONFIG_FAMILIES: Final = tuple(f for f in ARC_FAMILIES if f[0] in sc.CLUSTER_CONFIG_FAMILIES)

# --- realistic values -------------------------------------------------------------------------

#: AKS versions in support: (alias a user may have asked for, the patch AKS runs), by weight.
AKS_VERSIONS: Final = (
    ("1.30", "1.30.14"),
    ("1.31", "1.31.11"),
    ("1.32", "1.32.7"),
    ("1.33", "1.33.3"),
)
AKS_VERSION_CUM: Final = tuple(accumulate((10, 30, 40, 20)))
X86_SIZES: Final = (
    "Standard_D4s_v5",
    "Standard_D8s_v5",
    "Standard_D4ds_v5",
    "Standard_D8as_v5",
    "Standard_E8s_v5",
    "Standard_D16s_v5",
)
SYSTEM_SIZES: Final = ("Standard_D2s_v5", "Standard_D4s_v5", "Standard_D4ds_v5")
#: The Arm VM size of docs/scenario.md; ``fleet.core.clusters.is_arm64`` recognises it.
ARM64_VM_SIZE: Final = "Standard_D4ps_v5"
LINUX_SKUS: Final = ("Ubuntu", "AzureLinux")

#: Arc distributions: (distribution, infrastructure, kubernetesVersion suffix, weight).
ARC_DISTRIBUTIONS: Final = (
    ("k3s", "generic", "+k3s1", 35),
    ("aks_edge_essentials", "generic", "", 20),
    ("rancher_rke", "vsphere", "+rke2r1", 15),
    ("openshift", "vsphere", "", 12),
    ("generic", "azure_stack_hci", "", 8),
    ("eks", "aws", "-eks-a1b2c3d", 5),
    ("gke", "gcp", "-gke.1100000", 5),
)
# Cumulative weights: ``Random.choices`` would rebuild them on every call otherwise.
ARC_DISTRIBUTION_CUM: Final = tuple(accumulate(d[3] for d in ARC_DISTRIBUTIONS))
#: Currently installed version of a compliant cluster: newest 75 %, N-1 17 %, N-2 8 %.
VERSION_CUM: Final = (75, 92, 100)
ARC_K8S: Final = ("1.29.15", "1.30.14", "1.31.10", "1.32.6")
ARC_AGENTS: Final = ("1.21.10", "1.22.4", "1.23.7", "1.24.3")

#: Who created things: fleet's own service principal writes the GitOps resources; people and
#: a pipeline created the clusters.
USERS: Final = ("platform-team@contoso.com", "ops@contoso.com", "sre-oncall@contoso.com")
#: The principal fleet's emulator credential authenticates as (its token's ``oid``): the
#: generated GitOps resources were written by the fleet that sweeps them, so fleet does not
#: take its own writes for someone else's (``FOREIGN_WRITER``).
FLEET_PRINCIPAL: Final = "fleet-emulator-principal"

DAY: Final = 86400
#: Flux v1 configurations could not be created from this day on (Azure retired Flux v1 in
#: AKS and Arc GitOps: no new sourceControlConfigurations since 1 January 2024).
FLUX_V1_BLOCKED: Final = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
ARC_OFFLINE_AGE: Final = 5 * DAY
ARC_EXPIRED_AGE: Final = 120 * DAY

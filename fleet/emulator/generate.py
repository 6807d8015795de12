"""The fleet generator: a deterministic, realistic fleet snapshot for the emulator and the tests.

``generate(clusters=N, subscriptions=S, seed=K)`` builds a fleet snapshot (docs/contracts.md, Fleet
snapshot, a contract) of N AKS and Arc clusters spread over S subscriptions, with their
Microsoft.KubernetesConfiguration children shaped exactly as ARM 2023-05-01 returns them (see
the spec examples ``GetExtension.json`` and ``GetFluxConfiguration.json``), and ``dumps`` turns
it into bytes. docs/scenario.md is the specification: each cluster gets one *defect kind*
(``generator.defects``), ``compliant`` for about 45 % of them, and carries exactly what the
example policies declare for it except for the one thing its kind changes, so the end-to-end
tests know the verdict of every cluster in advance.

Determinism: the output depends only on (clusters, subscriptions, seed, now). One
``random.Random(seed)`` drives every choice, in a fixed order; nothing iterates a set, and
``dumps`` sorts keys, so the same arguments give byte-identical JSON.

Scale: 50,000 clusters take a few seconds (``benchmarks/bench_generate.py``). Resources are
built as fresh literal dicts (no deepcopy, no sharing between resources, because the emulator
mutates what it is given), timestamps are formatted with ``time.strftime`` and commit shas are
drawn once per repository.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from random import Random
from typing import Any, Final

import orjson

from fleet.core.ids import (
    CLUSTER_PROVIDERS,
    EXTENSIONS,
    FLUX_CONFIGURATIONS,
    RESOURCE_GROUPS,
    SOURCE_CONTROL_CONFIGURATIONS,
    ClusterId,
    ClusterType,
    child_id,
)
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
_ARC_ONLY: Final = frozenset({ARC_OFFLINE, ARC_EXPIRED})
_AKS_ONLY: Final = frozenset({AKS_STOPPED, EXEMPT})
#: Kinds that change a declared flux configuration: the cluster must have one.
_NEEDS_FLUX_CONFIG: Final = frozenset(
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
_FORCED_ARC = sum(KIND_WEIGHTS[k] for k in KINDS if k in _ARC_ONLY) / 100
_FREE = 1 - sum(KIND_WEIGHTS[k] for k in KINDS if k in _ARC_ONLY | _AKS_ONLY) / 100
_P_ARC_FREE: Final = (ARC_SHARE - _FORCED_ARC) / _FREE

#: Share of each resource group family, per cluster type (Arc lives mostly at the edge).
_AKS_FAMILIES: Final = (("prod", 45), ("stg", 25), ("dev", 30))
_ARC_FAMILIES: Final = (("edge", 60), ("prod", 15), ("stg", 10), ("dev", 15))
#: The same, restricted to the groups ``cluster-config`` targets (for ``depends_on_drift``).
_AKS_CONFIG_FAMILIES: Final = tuple(f for f in _AKS_FAMILIES if f[0] in sc.CLUSTER_CONFIG_FAMILIES)
_ARC_CONFIG_FAMILIES: Final = tuple(f for f in _ARC_FAMILIES if f[0] in sc.CLUSTER_CONFIG_FAMILIES)

# --- realistic values -------------------------------------------------------------------------

#: AKS versions in support: (alias a user may have asked for, the patch AKS runs), by weight.
_AKS_VERSIONS: Final = (
    ("1.30", "1.30.14"),
    ("1.31", "1.31.11"),
    ("1.32", "1.32.7"),
    ("1.33", "1.33.3"),
)
_AKS_VERSION_CUM: Final = tuple(accumulate((10, 30, 40, 20)))
_X86_SIZES: Final = (
    "Standard_D4s_v5",
    "Standard_D8s_v5",
    "Standard_D4ds_v5",
    "Standard_D8as_v5",
    "Standard_E8s_v5",
    "Standard_D16s_v5",
)
_SYSTEM_SIZES: Final = ("Standard_D2s_v5", "Standard_D4s_v5", "Standard_D4ds_v5")
#: The Arm VM size of docs/scenario.md; ``fleet.core.clusters.is_arm64`` recognises it.
ARM64_VM_SIZE: Final = "Standard_D4ps_v5"
_LINUX_SKUS: Final = ("Ubuntu", "AzureLinux")

#: Arc distributions: (distribution, infrastructure, kubernetesVersion suffix, weight).
_ARC_DISTRIBUTIONS: Final = (
    ("k3s", "generic", "+k3s1", 35),
    ("aks_edge_essentials", "generic", "", 20),
    ("rancher_rke", "vsphere", "+rke2r1", 15),
    ("openshift", "vsphere", "", 12),
    ("generic", "azure_stack_hci", "", 8),
    ("eks", "aws", "-eks-a1b2c3d", 5),
    ("gke", "gcp", "-gke.1100000", 5),
)
# Cumulative weights: ``Random.choices`` would rebuild them on every call otherwise.
_ARC_DISTRIBUTION_CUM: Final = tuple(accumulate(d[3] for d in _ARC_DISTRIBUTIONS))
#: Currently installed version of a compliant cluster: newest 75 %, N-1 17 %, N-2 8 %.
_VERSION_CUM: Final = (75, 92, 100)
_ARC_K8S: Final = ("1.29.15", "1.30.14", "1.31.10", "1.32.6")
_ARC_AGENTS: Final = ("1.21.10", "1.22.4", "1.23.7", "1.24.3")

#: Who created things: fleet's own service principal writes the GitOps resources; people and
#: a pipeline created the clusters.
_USERS: Final = ("platform-team@contoso.com", "ops@contoso.com", "sre-oncall@contoso.com")

_DAY: Final = 86400
#: Flux v1 configurations could not be created from this day on (Azure retired Flux v1 in
#: AKS and Arc GitOps: no new sourceControlConfigurations since 1 January 2024).
_FLUX_V1_BLOCKED: Final = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
_ARC_OFFLINE_AGE: Final = 5 * _DAY
_ARC_EXPIRED_AGE: Final = 120 * _DAY

#: Above this many clusters ``dumps`` writes compact JSON: indentation would cost a third
#: more bytes and time for files nobody reads by eye.
PRETTY_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class _Group:
    subscription_id: str
    name: str
    family: str
    location: str
    env: str

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.name}"


@dataclass(slots=True)
class _Plan:
    """What was decided for one cluster before rendering its resources."""

    n: int
    kind: str
    cluster_type: ClusterType
    group: _Group
    name: str
    tags: dict[str, str]
    arm64: bool
    #: Seconds since the cluster last talked to Azure: 0 unless offline, expired or stopped.
    #: Status timestamps of its children are at least this old.
    silent_for: int


class _Clock:
    """ISO timestamps relative to ``now`` (second precision, as ARM prints them)."""

    __slots__ = ("epoch",)

    def __init__(self, now: datetime) -> None:
        self.epoch = int(now.timestamp())

    def ago(self, seconds: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.epoch - seconds))

    def ahead(self, seconds: int) -> str:
        return self.ago(-seconds)


def _uuid(rng: Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _sha(rng: Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def default_now() -> datetime:
    """The current UTC time, rounded down to the minute."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


# --- the fleet ------------------------------------------------------------------------------


def generate(
    *, clusters: int, subscriptions: int, seed: int, now: datetime | None = None
) -> dict[str, Any]:
    """A fleet snapshot (docs/contracts.md, Fleet snapshot) of ``clusters`` clusters in
    ``subscriptions`` subscriptions.

    ``now`` anchors every timestamp (default: the current UTC minute); pass it for
    reproducible output. Besides the contract keys the snapshot carries
    ``generator`` (``seed``, ``clusters``, ``subscriptions``, ``generatedAt`` and ``defects``:
    cluster id -> defect kind, for every cluster) and ``emulator`` (``faults``: the injected
    read errors; ``failingSources``: git URLs whose reconciliation fails, none by default).
    """
    if clusters < 1:
        raise ValueError(f"clusters must be at least 1, got {clusters}")
    if subscriptions < 1:
        raise ValueError(f"subscriptions must be at least 1, got {subscriptions}")
    when = default_now() if now is None else now
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # The generator allocates millions of small dicts and no reference cycles: the cyclic
    # garbage collector would rescan the growing heap over and over (more than half the run
    # time at 50,000 clusters) and can find nothing to free.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(clusters, subscriptions, seed, _Clock(when))
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate(clusters: int, subscriptions: int, seed: int, clock: _Clock) -> dict[str, Any]:
    rng = Random(seed)

    tenant = _uuid(rng)
    fleet_principal = _uuid(rng)
    subs = [
        {
            "id": f"/subscriptions/{sc.subscription_id(i)}",
            "subscriptionId": sc.subscription_id(i),
            "displayName": sc.subscription_name(i),
            "state": "Enabled",
            "tenantId": tenant,
        }
        for i in range(1, subscriptions + 1)
    ]
    groups = [_groups_of(rng, str(s["subscriptionId"])) for s in subs]
    resources: list[Json] = [
        {
            "id": g.id,
            "type": RESOURCE_GROUPS,
            "name": g.name,
            "location": g.location,
            "tags": {"env": g.env, "owner": "platform"},
            "properties": {"provisioningState": "Succeeded"},
        }
        for by_family in groups
        for family in sc.RG_FAMILIES
        for g in by_family[family]
    ]
    renderer = _Renderer(rng, clock, tenant, fleet_principal)
    defects: dict[str, str] = {}
    faults: list[Json] = []
    for n, kind in enumerate(_assign_kinds(rng, clusters), start=1):
        plan = _plan(rng, n, kind, groups)
        cluster_id = str(
            ClusterId(plan.group.subscription_id, plan.group.name, plan.cluster_type, plan.name)
        )
        defects[cluster_id] = kind
        renderer.cluster(plan, cluster_id, resources)
        if kind == READ_ERROR:
            faults.append(read_error_fault(cluster_id, plan.name))

    return {
        "kind": "FleetSnapshot",
        "subscriptions": subs,
        "extensionTypeVersions": {
            sc.EXTENSION_TYPE: {
                "Stable": list(sc.STABLE_VERSIONS),
                "Preview": list(sc.PREVIEW_VERSIONS),
            }
        },
        "resources": resources,
        "generator": {
            "seed": seed,
            "clusters": clusters,
            "subscriptions": subscriptions,
            "generatedAt": clock.ago(0),
            "defects": defects,
        },
        "emulator": {"faults": faults, "failingSources": []},
    }


def read_error_fault(cluster_id: str, cluster_name: str) -> Json:
    """The fault that makes every GET under the cluster's KubernetesConfiguration answer 500.

    The shape is the emulator's scripted fault (``fleet.emulator.faults``): ``action: error``,
    ``count: null`` for unlimited, and a stable ``id`` so tests can address it.
    """
    return {
        "id": f"read-error-{cluster_name}",
        "action": "error",
        "method": "GET",
        "pathPrefix": f"{cluster_id}/providers/Microsoft.KubernetesConfiguration",
        "status": 500,
        "code": "InternalServerError",
        "message": "An internal error occurred while reading Microsoft.KubernetesConfiguration "
        "resources of the cluster (fault injected by the fleet generator: read_error).",
        "count": None,
    }


def dumps(snapshot: dict[str, Any], *, pretty: bool | None = None) -> bytes:
    """The snapshot as JSON bytes with sorted keys; indented when small (or when asked)."""
    if pretty is None:
        pretty = len(snapshot.get("generator", {}).get("defects", ())) <= PRETTY_LIMIT
    options = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    if pretty:
        options |= orjson.OPT_INDENT_2
    return orjson.dumps(snapshot, option=options)


def summary(snapshot: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Counts for people: clusters by type, resources by type, clusters by defect kind."""
    types: Counter[str] = Counter(str(r.get("type")) for r in snapshot.get("resources", ()))
    defects = Counter(snapshot.get("generator", {}).get("defects", {}).values())
    return {
        "clusterTypes": {t: types[CLUSTER_PROVIDERS[t]] for t in (MANAGED, CONNECTED)},
        "resources": {
            label: types[arm_type]
            for label, arm_type in (
                ("resource groups", RESOURCE_GROUPS),
                ("extensions", EXTENSIONS),
                ("flux configurations", FLUX_CONFIGURATIONS),
                ("Flux v1 configurations", SOURCE_CONTROL_CONFIGURATIONS),
            )
        },
        # Table order of docs/scenario.md, kinds that did not occur left out.
        "defects": {k: defects[k] for k in KINDS if defects[k]},
    }


def _groups_of(rng: Random, subscription_id: str) -> dict[str, list[_Group]]:
    """A subscription's resource groups: every family at least once, so any kind fits anywhere."""
    out: dict[str, list[_Group]] = {}
    for family, (prefix, envs, locations, _arc_only) in sc.RG_FAMILIES.items():
        count = rng.randint(1, 3 if family == "prod" else 2)
        seen: Counter[str] = Counter()
        members = []
        for _ in range(count):
            location = rng.choice(locations)
            seen[location] += 1
            name = f"{prefix}-{sc.REGION_CODES[location]}-{seen[location]}"
            env = envs[0] if len(envs) == 1 else rng.choice(envs)
            members.append(_Group(subscription_id, name, family, location, env))
        out[family] = members
    return out


def _assign_kinds(rng: Random, n: int) -> list[str]:
    """One kind per cluster by weight; with n >= len(KINDS), every kind at least once.

    A missing kind takes the slot of a random cluster whose kind occurs more than once, so the
    mix stays as drawn apart from the few slots the guarantee needs.
    """
    kinds = rng.choices(KINDS, weights=list(KIND_WEIGHTS.values()), k=n)
    if n < len(KINDS):
        return kinds
    counts = Counter(kinds)
    missing = [k for k in KINDS if counts[k] == 0]
    if missing:
        order = list(range(n))
        rng.shuffle(order)
        slots = iter(order)
        for kind in missing:
            # Terminates: while a kind is missing, some other kind occurs twice (n >= len(KINDS)),
            # and a slot skipped here never becomes a donor later (counts only go down).
            for slot in slots:
                if counts[kinds[slot]] > 1:
                    counts[kinds[slot]] -= 1
                    kinds[slot] = kind
                    counts[kind] = 1
                    break
    return kinds


def _weighted(rng: Random, options: Sequence[tuple[str, int]]) -> str:
    total = sum(w for _, w in options)
    r = rng.random() * total
    for value, weight in options:
        r -= weight
        if r < 0:
            return value
    return options[-1][0]


def _plan(rng: Random, n: int, kind: str, groups: list[dict[str, list[_Group]]]) -> _Plan:
    """Decide where a cluster of ``kind`` lives and what it is, honouring the kind's needs."""
    if kind in _ARC_ONLY:
        ctype = CONNECTED
    elif kind in _AKS_ONLY:
        ctype = MANAGED
    else:
        ctype = CONNECTED if rng.random() < _P_ARC_FREE else MANAGED
    by_family = groups[rng.randrange(len(groups))]
    if kind == EXEMPT:
        family = "dev"
    elif kind == DEPENDS_ON_DRIFT or (kind in _NEEDS_FLUX_CONFIG and ctype == MANAGED):
        # cluster-config must apply (AKS in rg-dev-* would have no flux configuration at all:
        # team-alpha excludes env=dev). Arc always has edge-baseline.
        family = _weighted(
            rng, _ARC_CONFIG_FAMILIES if ctype == CONNECTED else _AKS_CONFIG_FAMILIES
        )
    else:
        family = _weighted(rng, _ARC_FAMILIES if ctype == CONNECTED else _AKS_FAMILIES)
    group = rng.choice(by_family[family])

    tags = {"env": group.env}
    r = rng.random()
    tags["ring"] = "0" if r < 0.05 else "1" if r < 0.30 else "2"
    r = rng.random()
    if kind != EXEMPT and r < 0.30:
        tags["team"] = "alpha" if r < 0.15 else "beta"
    if kind == CONFLICT:
        tags["tenancy"] = "shared"

    prefix = "aks" if ctype == MANAGED else "arc"
    name = f"aks-lab-{n:05d}" if kind == EXEMPT else f"{prefix}-{group.env}-{n:05d}"
    arm64 = rng.random() < 0.10 or kind == ARM64_OLD_VERSION
    if kind == ARC_OFFLINE:
        silent = _ARC_OFFLINE_AGE + rng.randrange(0, 6 * 3600)
    elif kind == ARC_EXPIRED:
        silent = _ARC_EXPIRED_AGE + rng.randrange(0, 6 * 3600)
    elif kind == AKS_STOPPED:
        silent = rng.randrange(1 * _DAY, 21 * _DAY)
    else:
        silent = 0
    return _Plan(n, kind, ctype, group, name, tags, arm64, silent)


# --- rendering ------------------------------------------------------------------------------


class _Renderer:
    """Turns plans into ARM JSON. Holds the fleet-wide values (tenant, principals, commits)."""

    def __init__(self, rng: Random, clock: _Clock, tenant: str, fleet_principal: str) -> None:
        self.rng = rng
        self.clock = clock
        self.tenant = tenant
        self.fleet_principal = fleet_principal
        # Every cluster of a repository syncs the same few recent commits, the newest first:
        # a real fleet converges on the head of a branch with a few clusters lagging behind.
        self.commits: dict[tuple[str, str], list[str]] = {}

    # -- helpers ------------------------------------------------------------------------------

    def _commit(self, url: str, branch: str, lagging: bool) -> str:
        shas = self.commits.get((url, branch))
        if shas is None:
            shas = self.commits[(url, branch)] = [_sha(self.rng) for _ in range(4)]
        if lagging:
            return shas[-1]
        r = self.rng.random()
        return shas[0] if r < 0.8 else shas[1] if r < 0.95 else shas[2]

    def _system_data(self, by: str, by_type: str, created: int, modified: int) -> Json:
        return {
            "createdBy": by,
            "createdByType": by_type,
            "createdAt": self.clock.ago(created),
            "lastModifiedBy": by,
            "lastModifiedByType": by_type,
            "lastModifiedAt": self.clock.ago(modified),
        }

    def _identity(self) -> Json:
        return {"type": "SystemAssigned", "principalId": _uuid(self.rng), "tenantId": self.tenant}

    # -- a cluster and its children -------------------------------------------------------------

    def cluster(self, plan: _Plan, cluster_id: str, out: list[Json]) -> None:
        rng = self.rng
        # Seconds since the cluster was created; always before it fell silent, and before
        # Flux v1 creation was blocked (2024-01-01) for clusters that still run it.
        oldest = 30 * _DAY
        if plan.kind == FLUX_V1:
            oldest = max(oldest, self.clock.epoch - _FLUX_V1_BLOCKED + 61 * _DAY)
        age = plan.silent_for + rng.randrange(oldest, oldest + 900 * _DAY)
        if plan.cluster_type == MANAGED:
            out.append(self._managed_cluster(plan, cluster_id, age))
        else:
            out.append(self._connected_cluster(plan, cluster_id, age))
        kind = plan.kind
        if kind == FLUX_V1:
            out.append(self._flux_v1(plan, cluster_id, age))
            return
        if kind == EXTENSION_MISSING:
            return
        installed = rng.randrange(plan.silent_for + _DAY, age)
        out.append(self._extension(plan, cluster_id, installed))

        declared = sc.declared_flux_configs(plan.cluster_type, plan.group.name, plan.tags)
        # The first declared configuration carries the cluster's flux configuration defect
        # (flux_config_missing: it is the one left out).
        first = declared[0] if declared else None
        if kind == FLUX_CONFIG_MISSING:
            declared, first = declared[1:], None
        for name in declared:
            out.append(
                self._flux_config(
                    plan,
                    cluster_id,
                    name,
                    sc.FLUX_CONFIGS[name],
                    installed,
                    kind if name == first else COMPLIANT,
                )
            )
        if kind == UNMANAGED_CONFIG:
            out.append(
                self._flux_config(
                    plan,
                    cluster_id,
                    sc.UNMANAGED_CONFIG,
                    sc.UNMANAGED_BODY,
                    age,
                    COMPLIANT,
                    created_by=(rng.choice(_USERS), "User"),
                )
            )

    def _managed_cluster(self, plan: _Plan, cluster_id: str, age: int) -> Json:
        rng = self.rng
        g = plan.group
        alias, patch = rng.choices(_AKS_VERSIONS, cum_weights=_AKS_VERSION_CUM)[0]
        power = {"code": "Stopped" if plan.kind == AKS_STOPPED else "Running"}
        dns_prefix = f"{plan.name}-dns"
        osku = rng.choice(_LINUX_SKUS)
        pools: list[Json] = [
            self._pool(
                "system",
                rng.choice(_SYSTEM_SIZES),
                "Linux",
                osku,
                "System",
                rng.randint(2, 3),
                patch,
                power,
            )
        ]
        if plan.arm64:
            pools.append(
                self._pool(
                    "arm64", ARM64_VM_SIZE, "Linux", osku, "User", rng.randint(2, 10), patch, power
                )
            )
        if not plan.arm64 or rng.random() < 0.5:
            pools.append(
                self._pool(
                    "user",
                    rng.choice(_X86_SIZES),
                    "Linux",
                    osku,
                    "User",
                    rng.randint(3, 30),
                    patch,
                    power,
                )
            )
        if rng.random() < 0.05:
            pools.append(
                self._pool(
                    "win",
                    rng.choice(_X86_SIZES),
                    "Windows",
                    "Windows2022",
                    "User",
                    rng.randint(1, 5),
                    patch,
                    power,
                )
            )
        return {
            "id": cluster_id,
            "type": CLUSTER_PROVIDERS[MANAGED],
            "name": plan.name,
            "location": g.location,
            "tags": plan.tags,
            "identity": self._identity(),
            "sku": {"name": "Base", "tier": "Standard" if g.env == "prod" else "Free"},
            "systemData": self._system_data(
                rng.choice(_USERS), "User", age, rng.randrange(plan.silent_for, age)
            ),
            "properties": {
                "provisioningState": "Succeeded",
                "powerState": power,
                "kubernetesVersion": alias if rng.random() < 0.3 else patch,
                "currentKubernetesVersion": patch,
                "dnsPrefix": dns_prefix,
                "fqdn": f"{dns_prefix}-{rng.getrandbits(32):08x}.hcp.{g.location}.azmk8s.io",
                "agentPoolProfiles": pools,
                "nodeResourceGroup": f"MC_{g.name}_{plan.name}_{g.location}",
                "enableRBAC": True,
                "oidcIssuerProfile": {"enabled": True},
                "networkProfile": {"networkPlugin": "azure", "networkPluginMode": "overlay"},
            },
        }

    def _pool(
        self,
        name: str,
        size: str,
        os_type: str,
        os_sku: str,
        mode: str,
        count: int,
        version: str,
        power: Json,
    ) -> Json:
        return {
            "name": name,
            "count": count,
            "vmSize": size,
            "osType": os_type,
            "osSKU": os_sku,
            "mode": mode,
            "type": "VirtualMachineScaleSets",
            "orchestratorVersion": version,
            "currentOrchestratorVersion": version,
            "provisioningState": "Succeeded",
            "powerState": dict(power),
        }

    def _connected_cluster(self, plan: _Plan, cluster_id: str, age: int) -> Json:
        rng = self.rng
        dist, infra, suffix, _w = rng.choices(
            _ARC_DISTRIBUTIONS, cum_weights=_ARC_DISTRIBUTION_CUM
        )[0]
        nodes = rng.randint(1, 12)
        silent = plan.silent_for
        if plan.kind == ARC_OFFLINE:
            status = "Offline"
        elif plan.kind == ARC_EXPIRED:
            status = "Expired"
        else:
            status = "Connected"
            silent = rng.randrange(0, 300)
        # The managed identity certificate lasts 90 days and is renewed while connected; an
        # Expired cluster is one whose certificate ran out.
        cert_expires = 90 * _DAY - (silent + rng.randrange(0, 30 * _DAY))
        props: Json = {
            "provisioningState": "Succeeded",
            "connectivityStatus": status,
            "lastConnectivityTime": self.clock.ago(silent),
            "agentVersion": rng.choice(_ARC_AGENTS),
            "kubernetesVersion": rng.choice(_ARC_K8S) + suffix,
            "distribution": dist,
            "infrastructure": infra,
            "totalNodeCount": nodes,
            "totalCoreCount": nodes * rng.choice((2, 4, 8, 16)),
            "managedIdentityCertificateExpirationTime": self.clock.ahead(cert_expires),
            "privateLinkState": "Disabled",
            "azureHybridBenefit": "NotApplicable",
        }
        if plan.arm64:
            props["arch"] = "arm64"
        return {
            "id": cluster_id,
            "type": CLUSTER_PROVIDERS[CONNECTED],
            "name": plan.name,
            "location": plan.group.location,
            "tags": plan.tags,
            "identity": self._identity(),
            "systemData": self._system_data(
                rng.choice(_USERS), "User", age, rng.randrange(silent, age)
            ),
            "properties": props,
        }

    def _extension(self, plan: _Plan, cluster_id: str, installed: int) -> Json:
        rng = self.rng
        kind = plan.kind
        if kind == VERSION_OUT_OF_WINDOW:
            version = sc.OUT_OF_WINDOW_VERSION
        elif kind == ARM64_OLD_VERSION:
            version = sc.ARM64_OLD_VERSION
        else:
            # Auto-upgrade rolls a release out over days, so a compliant fleet is a mix of the
            # newest version and the ones just before it, within each cluster's window.
            window = sc.version_window(plan.tags)
            allowed = sc.STABLE_VERSIONS[: window + 1]
            version = rng.choices(allowed, cum_weights=_VERSION_CUM[: len(allowed)])[0]
        settings = dict(sc.EXTENSION_SETTINGS)
        r = rng.random()
        # Ungoverned settings some teams add: a policy that does not name them ignores them.
        if r < 0.08:
            settings["image-automation-controller.enabled"] = "true"
            settings["image-reflector-controller.enabled"] = "true"
        elif r < 0.14 and plan.cluster_type == MANAGED:
            settings["useKubeletIdentity"] = "true"
        props: Json = {
            "extensionType": sc.EXTENSION_TYPE,
            "autoUpgradeMinorVersion": True,
            "releaseTrain": "Preview" if kind == EXTENSION_DRIFT else sc.EXTENSION_RELEASE_TRAIN,
            "version": None,
            "scope": {"cluster": {"releaseNamespace": sc.EXTENSION_NAMESPACE}},
            "configurationSettings": settings,
            "currentVersion": version,
            "provisioningState": "Succeeded",
            "statuses": [],
            "packageUri": None,
            "isSystemExtension": False,
        }
        if kind == EXTENSION_FAILED:
            props["provisioningState"] = "Failed"
            message = (
                "Helm upgrade failed: context deadline exceeded: timed out waiting for "
                "deployment flux-system/fluxconfig-agent to become ready"
            )
            props["statuses"] = [
                {
                    "code": "InstallationFailed",
                    "displayStatus": "Failed",
                    "level": "Error",
                    "message": message,
                    "time": self.clock.ago(plan.silent_for + rng.randrange(600, 3 * _DAY)),
                }
            ]
            props["errorInfo"] = {"code": "ExtensionOperationFailed", "message": message}
        resource: Json = {
            "id": child_id(cluster_id, "extensions", sc.EXTENSION_NAME),
            "type": EXTENSIONS,
            "name": sc.EXTENSION_NAME,
            "systemData": self._system_data(
                self.fleet_principal,
                "Application",
                installed,
                rng.randrange(plan.silent_for + 3600, installed),
            ),
            "properties": props,
        }
        if plan.cluster_type == MANAGED:
            props["aksAssignedIdentity"] = {
                "type": "SystemAssigned",
                "principalId": _uuid(rng),
                "tenantId": self.tenant,
            }
        else:
            resource["identity"] = self._identity()
        return resource

    def _flux_config(
        self,
        plan: _Plan,
        cluster_id: str,
        name: str,
        body: Json,
        installed: int,
        kind: str,
        created_by: tuple[str, str] | None = None,
    ) -> Json:
        """One fluxConfigurations resource from a policy body, ARM defaults filled in.

        ``kind`` is the defect this configuration carries (``compliant`` when another one
        of the cluster's configurations carries it).
        """
        rng = self.rng
        clock = self.clock
        git = body["gitRepository"]
        ref = git.get("repositoryRef") or {}
        branch = "dev" if kind == BRANCH_DRIFT else ref.get("branch")
        namespace = body.get("namespace", "default")
        sync = git.get("syncIntervalInSeconds", 600)
        kustomizations = {k: _kustomization(k, v) for k, v in body["kustomizations"].items()}
        if kind == DEPENDS_ON_DRIFT:
            kustomizations["apps"]["dependsOn"] = []
        if kind == EXTRA_KUSTOMIZATION:
            kustomizations[sc.DEBUG_KUSTOMIZATION] = _kustomization(
                sc.DEBUG_KUSTOMIZATION, {"path": "./debug", "prune": False}
            )

        silent = plan.silent_for
        sha = self._commit(git["url"], str(branch), lagging=silent > 0)
        revision = f"{branch}@sha1:{sha}"
        fetched = silent + rng.randrange(0, sync)
        changed = fetched + rng.randrange(0, 3 * _DAY)
        statuses = [
            _object_status(
                name,
                namespace,
                "GitRepository",
                "Succeeded",
                f"stored artifact for revision '{revision}'",
                clock.ago(changed),
            )
        ]
        failing = next(reversed(kustomizations)) if kind == FLUX_CONFIG_NONCOMPLIANT else None
        for k in kustomizations:
            status = _object_status(
                f"{name}-{k}",
                namespace,
                "Kustomization",
                "ReconciliationSucceeded",
                f"Applied revision: {revision}",
                clock.ago(max(silent, changed - rng.randrange(5, 120))),
            )
            if k == failing:
                status["complianceState"] = "Non-Compliant"
                condition = status["statusConditions"][0]
                condition["status"] = "False"
                condition["reason"] = "HealthCheckFailed"
                condition["message"] = (
                    "health check failed after 9m30.1s: timeout waiting for: "
                    f"[Deployment/{namespace}/{k} status: 'InProgress']"
                )
            statuses.append(status)

        props: Json = {
            "scope": body.get("scope", "cluster"),
            "namespace": namespace,
            "sourceKind": body.get("sourceKind", "GitRepository"),
            "suspend": body.get("suspend", False),
            "gitRepository": {
                "url": git["url"],
                "timeoutInSeconds": git.get("timeoutInSeconds", 600),
                "syncIntervalInSeconds": sync,
                "repositoryRef": {
                    "branch": branch,
                    "tag": ref.get("tag"),
                    "semver": ref.get("semver"),
                    "commit": ref.get("commit"),
                },
            },
            "kustomizations": kustomizations,
            "statuses": statuses,
            "repositoryPublicKey": "",
            "sourceSyncedCommitId": revision,
            "sourceUpdatedAt": clock.ago(fetched),
            "statusUpdatedAt": clock.ago(silent + rng.randrange(0, 120)),
            "complianceState": "Non-Compliant" if failing else "Compliant",
            "provisioningState": "Succeeded",
            "errorMessage": "",
        }
        if kind == FLUX_CONFIG_FAILED:
            props["provisioningState"] = "Failed"
            props["errorMessage"] = (
                f"Error: {{failed to apply the flux configuration '{name}' to the cluster: "
                "fluxconfig-agent did not acknowledge the request within the timeout}"
            )
        by, by_type = created_by or (self.fleet_principal, "Application")
        created = rng.randrange(silent + 3600, max(installed, silent + 7200))
        return {
            "id": child_id(cluster_id, "fluxConfigurations", name),
            "type": FLUX_CONFIGURATIONS,
            "name": name,
            "systemData": self._system_data(by, by_type, created, rng.randrange(silent, created)),
            "properties": props,
        }

    def _flux_v1(self, plan: _Plan, cluster_id: str, age: int) -> Json:
        rng = self.rng
        created = age - rng.randrange(_DAY, 60 * _DAY)
        name = sc.FLUX_V1_NAME
        return {
            "id": child_id(cluster_id, "sourceControlConfigurations", name),
            "type": SOURCE_CONTROL_CONFIGURATIONS,
            "name": name,
            "systemData": self._system_data(rng.choice(_USERS), "User", created, created),
            "properties": {
                "repositoryUrl": "git@github.com:contoso/legacy-gitops.git",
                "operatorNamespace": name,
                "operatorInstanceName": name,
                "operatorType": "Flux",
                "operatorParams": "--git-readonly --git-path=releases/prod",
                "operatorScope": "cluster",
                "sshKnownHostsContents": "",
                "enableHelmOperator": False,
                "repositoryPublicKey": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"
                + f"{rng.getrandbits(256):064x}",
                "provisioningState": "Succeeded",
                "complianceStatus": {
                    "complianceState": "Installed",
                    "lastConfigApplied": self.clock.ago(plan.silent_for + rng.randrange(0, _DAY)),
                    "message": '{"OperatorMessage":null,"ClusterState":null}',
                    "messageLevel": "Information",
                },
            },
        }


def _kustomization(name: str, body: Json) -> Json:
    """A kustomization as ARM returns it: every field present, defaults filled."""
    return {
        "name": name,
        "path": body.get("path", ""),
        "dependsOn": list(body.get("dependsOn") or ()),
        "timeoutInSeconds": body.get("timeoutInSeconds", 600),
        "syncIntervalInSeconds": body.get("syncIntervalInSeconds", 600),
        "retryIntervalInSeconds": body.get("retryIntervalInSeconds"),
        "prune": body.get("prune", False),
        "force": body.get("force", False),
        "wait": body.get("wait", True),
        "postBuild": body.get("postBuild"),
    }


def _object_status(
    name: str, namespace: str, kind: str, reason: str, message: str, since: str
) -> Json:
    """An ObjectStatus entry of a Ready Flux object (GitRepository or Kustomization)."""
    return {
        "name": name,
        "namespace": namespace,
        "kind": kind,
        "complianceState": "Compliant",
        "appliedBy": None,
        "helmReleaseProperties": None,
        "statusConditions": [
            {
                "lastTransitionTime": since,
                "message": message,
                "reason": reason,
                "status": "True",
                "type": "Ready",
            }
        ],
    }

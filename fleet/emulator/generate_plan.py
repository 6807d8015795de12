"""Planning a generated fleet: resource groups, one defect kind per cluster, and where each
cluster lives and what it is, before any resource is rendered.

Every choice comes from the one ``Random`` of the run, in a fixed order (generate.py calls
these in turn), so the same seed plans the same fleet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random

from fleet.core.ids import ClusterType
from fleet.emulator import scenario as sc
from fleet.emulator.generate_tables import (
    AKS_CONFIG_FAMILIES,
    AKS_FAMILIES,
    AKS_ONLY,
    AKS_STOPPED,
    ARC_CONFIG_FAMILIES,
    ARC_EXPIRED,
    ARC_EXPIRED_AGE,
    ARC_FAMILIES,
    ARC_OFFLINE,
    ARC_OFFLINE_AGE,
    ARC_ONLY,
    ARM64_OLD_VERSION,
    CONFLICT,
    CONNECTED,
    DAY,
    DEPENDS_ON_DRIFT,
    EXEMPT,
    KIND_WEIGHTS,
    KINDS,
    MANAGED,
    NEEDS_FLUX_CONFIG,
    P_ARC_FREE,
)


@dataclass(frozen=True, slots=True)
class Group:
    subscription_id: str
    name: str
    family: str
    location: str
    env: str

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.name}"


@dataclass(slots=True)
class Plan:
    """What was decided for one cluster before rendering its resources."""

    n: int
    kind: str
    cluster_type: ClusterType
    group: Group
    name: str
    tags: dict[str, str]
    arm64: bool
    #: Seconds since the cluster last talked to Azure: 0 unless offline, expired or stopped.
    #: Status timestamps of its children are at least this old.
    silent_for: int


def groups_of(rng: Random, subscription_id: str) -> dict[str, list[Group]]:
    """A subscription's resource groups: every family at least once, so any kind fits anywhere."""
    out: dict[str, list[Group]] = {}
    for family, (prefix, envs, locations, _arc_only) in sc.RG_FAMILIES.items():
        count = rng.randint(1, 3 if family == "prod" else 2)
        seen: Counter[str] = Counter()
        members = []
        for _ in range(count):
            location = rng.choice(locations)
            seen[location] += 1
            name = f"{prefix}-{sc.REGION_CODES[location]}-{seen[location]}"
            env = envs[0] if len(envs) == 1 else rng.choice(envs)
            members.append(Group(subscription_id, name, family, location, env))
        out[family] = members
    return out


def assign_kinds(rng: Random, n: int) -> list[str]:
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


def plan_cluster(rng: Random, n: int, kind: str, groups: list[dict[str, list[Group]]]) -> Plan:
    """Decide where a cluster of ``kind`` lives and what it is, honouring the kind's needs."""
    if kind in ARC_ONLY:
        ctype = CONNECTED
    elif kind in AKS_ONLY:
        ctype = MANAGED
    else:
        ctype = CONNECTED if rng.random() < P_ARC_FREE else MANAGED
    by_family = groups[rng.randrange(len(groups))]
    if kind == EXEMPT:
        family = "dev"
    elif kind == DEPENDS_ON_DRIFT or (kind in NEEDS_FLUX_CONFIG and ctype == MANAGED):
        # cluster-config must apply (AKS in rg-dev-* would have no flux configuration at all:
        # team-alpha excludes env=dev). Arc always has edge-baseline.
        family = _weighted(rng, ARC_CONFIG_FAMILIES if ctype == CONNECTED else AKS_CONFIG_FAMILIES)
    else:
        family = _weighted(rng, ARC_FAMILIES if ctype == CONNECTED else AKS_FAMILIES)
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
        silent = ARC_OFFLINE_AGE + rng.randrange(0, 6 * 3600)
    elif kind == ARC_EXPIRED:
        silent = ARC_EXPIRED_AGE + rng.randrange(0, 6 * 3600)
    elif kind == AKS_STOPPED:
        silent = rng.randrange(1 * DAY, 21 * DAY)
    else:
        silent = 0
    return Plan(n, kind, ctype, group, name, tags, arm64, silent)

"""Rendering of the cluster resources of a generated fleet: AKS managed clusters (with their
agent pools) and Arc connected clusters, shaped as ARM returns them.

``RenderContext`` holds what every rendered resource shares (the run's ``Random``, timestamps
relative to the run's ``now``, tenant and principals); generate_configs.py renders the
clusters' KubernetesConfiguration children with it.
"""

from __future__ import annotations

import time
from datetime import datetime
from random import Random

from fleet.core.ids import CLUSTER_PROVIDERS
from fleet.emulator.generate_plan import Plan
from fleet.emulator.generate_tables import (
    AKS_STOPPED,
    AKS_VERSION_CUM,
    AKS_VERSIONS,
    ARC_AGENTS,
    ARC_DISTRIBUTION_CUM,
    ARC_DISTRIBUTIONS,
    ARC_EXPIRED,
    ARC_K8S,
    ARC_OFFLINE,
    ARM64_VM_SIZE,
    CONNECTED,
    DAY,
    LINUX_SKUS,
    MANAGED,
    SYSTEM_SIZES,
    USERS,
    X86_SIZES,
    Json,
)


class Stamps:
    """ISO timestamps relative to ``now`` (second precision, as ARM prints them)."""

    __slots__ = ("epoch",)

    def __init__(self, now: datetime) -> None:
        self.epoch = int(now.timestamp())

    def ago(self, seconds: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.epoch - seconds))

    def ahead(self, seconds: int) -> str:
        return self.ago(-seconds)


def random_uuid(rng: Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def random_sha(rng: Random) -> str:
    return f"{rng.getrandbits(160):040x}"


class RenderContext:
    """The fleet-wide values every rendered resource draws on: the run's ``Random``, the
    timestamps, the tenant, fleet's principal and the commits of each repository."""

    def __init__(self, rng: Random, clock: Stamps, tenant: str, fleet_principal: str) -> None:
        self.rng = rng
        self.clock = clock
        self.tenant = tenant
        self.fleet_principal = fleet_principal
        # Every cluster of a repository syncs the same few recent commits, the newest first:
        # a real fleet converges on the head of a branch with a few clusters lagging behind.
        self.commits: dict[tuple[str, str], list[str]] = {}

    def commit(self, url: str, branch: str, lagging: bool) -> str:
        shas = self.commits.get((url, branch))
        if shas is None:
            shas = self.commits[(url, branch)] = [random_sha(self.rng) for _ in range(4)]
        if lagging:
            return shas[-1]
        r = self.rng.random()
        return shas[0] if r < 0.8 else shas[1] if r < 0.95 else shas[2]

    def system_data(self, by: str, by_type: str, created: int, modified: int) -> Json:
        return {
            "createdBy": by,
            "createdByType": by_type,
            "createdAt": self.clock.ago(created),
            "lastModifiedBy": by,
            "lastModifiedByType": by_type,
            "lastModifiedAt": self.clock.ago(modified),
        }

    def identity(self) -> Json:
        principal = random_uuid(self.rng)
        return {"type": "SystemAssigned", "principalId": principal, "tenantId": self.tenant}


def managed_cluster(ctx: RenderContext, plan: Plan, cluster_id: str, age: int) -> Json:
    rng = ctx.rng
    g = plan.group
    alias, patch = rng.choices(AKS_VERSIONS, cum_weights=AKS_VERSION_CUM)[0]
    power = {"code": "Stopped" if plan.kind == AKS_STOPPED else "Running"}
    dns_prefix = f"{plan.name}-dns"
    osku = rng.choice(LINUX_SKUS)
    pools: list[Json] = [
        _pool(
            "system",
            rng.choice(SYSTEM_SIZES),
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
            _pool("arm64", ARM64_VM_SIZE, "Linux", osku, "User", rng.randint(2, 10), patch, power)
        )
    if not plan.arm64 or rng.random() < 0.5:
        pools.append(
            _pool(
                "user",
                rng.choice(X86_SIZES),
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
            _pool(
                "win",
                rng.choice(X86_SIZES),
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
        "identity": ctx.identity(),
        "sku": {"name": "Base", "tier": "Standard" if g.env == "prod" else "Free"},
        "systemData": ctx.system_data(
            rng.choice(USERS), "User", age, rng.randrange(plan.silent_for, age)
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


def connected_cluster(ctx: RenderContext, plan: Plan, cluster_id: str, age: int) -> Json:
    rng = ctx.rng
    dist, infra, suffix, _w = rng.choices(ARC_DISTRIBUTIONS, cum_weights=ARC_DISTRIBUTION_CUM)[0]
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
    cert_expires = 90 * DAY - (silent + rng.randrange(0, 30 * DAY))
    props: Json = {
        "provisioningState": "Succeeded",
        "connectivityStatus": status,
        "lastConnectivityTime": ctx.clock.ago(silent),
        "agentVersion": rng.choice(ARC_AGENTS),
        "kubernetesVersion": rng.choice(ARC_K8S) + suffix,
        "distribution": dist,
        "infrastructure": infra,
        "totalNodeCount": nodes,
        "totalCoreCount": nodes * rng.choice((2, 4, 8, 16)),
        "managedIdentityCertificateExpirationTime": ctx.clock.ahead(cert_expires),
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
        "identity": ctx.identity(),
        "systemData": ctx.system_data(rng.choice(USERS), "User", age, rng.randrange(silent, age)),
        "properties": props,
    }

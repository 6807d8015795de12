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
from collections import Counter
from datetime import UTC, datetime
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
)
from fleet.emulator import scenario as sc
from fleet.emulator.generate_clusters import (
    RenderContext,
    Stamps,
    connected_cluster,
    managed_cluster,
    random_uuid,
)
from fleet.emulator.generate_configs import extension, flux_config, flux_v1, new_shapes
from fleet.emulator.generate_health import HEALTH_KINDS, add_health
from fleet.emulator.generate_plan import Plan, assign_kinds, groups_of, plan_cluster
from fleet.emulator.generate_tables import (
    COMPLIANT,
    CONNECTED,
    DAY,
    EXTENSION_MISSING,
    FLEET_PRINCIPAL,
    FLUX_CONFIG_MISSING,
    FLUX_V1,
    FLUX_V1_BLOCKED,
    KINDS,
    MANAGED,
    READ_ERROR,
    UNMANAGED_CONFIG,
    USERS,
    Json,
)

#: Above this many clusters ``dumps`` writes compact JSON: indentation would cost a third
#: more bytes and time for files nobody reads by eye.
PRETTY_LIMIT: Final = 1000


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
        snapshot = _generate(clusters, subscriptions, seed, Stamps(when))
        # Health shapes on a few compliant clusters, with their own Random: every other
        # cluster stays as the main draw made it.
        add_health(snapshot, seed)
        return snapshot
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate(clusters: int, subscriptions: int, seed: int, clock: Stamps) -> dict[str, Any]:
    rng = Random(seed)

    tenant = random_uuid(rng)
    random_uuid(rng)  # drawn as it always was, so a seed keeps giving the same fleet
    fleet_principal = FLEET_PRINCIPAL
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
    groups = [groups_of(rng, str(s["subscriptionId"])) for s in subs]
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
    ctx = RenderContext(rng, clock, tenant, fleet_principal)
    defects: dict[str, str] = {}
    faults: list[Json] = []
    for n, kind in enumerate(assign_kinds(rng, clusters), start=1):
        plan = plan_cluster(rng, n, kind, groups)
        cluster_id = str(
            ClusterId(plan.group.subscription_id, plan.group.name, plan.cluster_type, plan.name)
        )
        defects[cluster_id] = kind
        _cluster_resources(ctx, plan, cluster_id, resources)
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
        "defects": {k: defects[k] for k in (*KINDS, *HEALTH_KINDS) if defects[k]},
    }


def _cluster_resources(ctx: RenderContext, plan: Plan, cluster_id: str, out: list[Json]) -> None:
    """Append a planned cluster and the children its defect kind gives it."""
    rng = ctx.rng
    # Seconds since the cluster was created; always before it fell silent, and before
    # Flux v1 creation was blocked (2024-01-01) for clusters that still run it.
    oldest = 30 * DAY
    if plan.kind == FLUX_V1:
        oldest = max(oldest, ctx.clock.epoch - FLUX_V1_BLOCKED + 61 * DAY)
    age = plan.silent_for + rng.randrange(oldest, oldest + 900 * DAY)
    if plan.cluster_type == MANAGED:
        out.append(managed_cluster(ctx, plan, cluster_id, age))
    else:
        out.append(connected_cluster(ctx, plan, cluster_id, age))
    kind = plan.kind
    if kind == FLUX_V1:
        out.append(flux_v1(ctx, plan, cluster_id, age))
        return
    if kind == EXTENSION_MISSING:
        return
    installed = rng.randrange(plan.silent_for + DAY, age)
    out.append(extension(ctx, plan, cluster_id, installed))

    declared = sc.declared_flux_configs(plan.cluster_type, plan.group.name, plan.tags)
    # The first declared configuration carries the cluster's flux configuration defect
    # (flux_config_missing: it is the one left out).
    first = declared[0] if declared else None
    if kind == FLUX_CONFIG_MISSING:
        declared, first = declared[1:], None
    for name in declared:
        out.append(
            flux_config(
                ctx,
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
            flux_config(
                ctx,
                plan,
                cluster_id,
                sc.UNMANAGED_CONFIG,
                sc.UNMANAGED_BODY,
                age,
                COMPLIANT,
                created_by=(rng.choice(USERS), "User"),
            )
        )
        # 2025-04-01 sources and both kinds of bucket, no policy naming them
        out.extend(new_shapes(ctx, plan, cluster_id, age))

"""The fleet generator's health shapes (docs/scenario.md, "Health kinds"): Flux objects that
fail, configurations Pending or gone quiet, clusters that cannot take the extension, and
offline Arc clusters with a definite gap.

``add_health(snapshot, seed)`` runs after the main generator: it turns a few clusters of kind
``compliant`` into each health kind, in place, with its own ``Random`` (derived from the seed),
so the main draw and every other cluster stay exactly as before. A fleet of fewer than
``MIN_CLUSTERS`` clusters is left alone; above it each kind gets ``max(1, n // PER)``
clusters. The kinds:

* ``flux_source_failing``: the first declared configuration's GitRepository cannot
  authenticate, and its Kustomizations have no artifact (``Non-Compliant``);
* ``helm_release_blocked``: a HelmRelease of the configuration is blocked by multi-tenancy's
  cross-namespace rule, and a Kustomization applies an API version Flux no longer serves;
* ``flux_config_pending``: the configuration changed three hours ago and is still
  ``Pending`` (the agent last reported then too);
* ``flux_status_stale``: the agent last reported two days ago on a connected cluster;
* ``old_kubernetes``: an Arc cluster on Kubernetes 1.19, without the extension;
* ``arc_offline_no_extension``: an Arc cluster offline for five days, without the extension;
* ``unregistered_subscription``: clusters in an extra subscription where
  Microsoft.KubernetesConfiguration is not registered (so they have no children at all).

Every answer stays valid against the fluxConfigurations OpenAPI files (``statuses[]`` entries
are ObjectStatusDefinition, with helmReleaseProperties where the kind is HelmRelease).
"""

from __future__ import annotations

import time
from datetime import datetime
from random import Random
from typing import Any, Final

from fleet.core.ids import KC_PROVIDER, RESOURCE_GROUPS, ClusterId
from fleet.emulator import scenario as sc

Json = dict[str, Any]

FLUX_SOURCE_FAILING: Final = "flux_source_failing"
HELM_RELEASE_BLOCKED: Final = "helm_release_blocked"
FLUX_CONFIG_PENDING: Final = "flux_config_pending"
FLUX_STATUS_STALE: Final = "flux_status_stale"
OLD_KUBERNETES: Final = "old_kubernetes"
ARC_OFFLINE_NO_EXTENSION: Final = "arc_offline_no_extension"
UNREGISTERED_SUBSCRIPTION: Final = "unregistered_subscription"
#: In the order docs/scenario.md lists them.
HEALTH_KINDS: Final = (
    FLUX_SOURCE_FAILING,
    HELM_RELEASE_BLOCKED,
    FLUX_CONFIG_PENDING,
    FLUX_STATUS_STALE,
    OLD_KUBERNETES,
    ARC_OFFLINE_NO_EXTENSION,
    UNREGISTERED_SUBSCRIPTION,
)
#: Kinds that change the first declared flux configuration (the cluster must have one).
_CONFIG_KINDS: Final = (
    FLUX_SOURCE_FAILING,
    HELM_RELEASE_BLOCKED,
    FLUX_CONFIG_PENDING,
    FLUX_STATUS_STALE,
)
_ARC_KINDS: Final = (OLD_KUBERNETES, ARC_OFFLINE_NO_EXTENSION)
MIN_CLUSTERS: Final = 100
PER: Final = 200
HOUR: Final = 3600
DAY: Final = 86400
OLD_K8S: Final = "1.19.16+k3s1"
UNREGISTERED_NAME: Final = "lab-unregistered"


class _Clock:
    def __init__(self, now: str) -> None:
        self.epoch = int(datetime.fromisoformat(now.replace("Z", "+00:00")).timestamp())

    def ago(self, seconds: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.epoch - seconds))


def _failing(name: str, namespace: str, kind: str, reason: str, message: str, since: str) -> Json:
    return {
        "name": name,
        "namespace": namespace,
        "kind": kind,
        "complianceState": "Non-Compliant",
        "appliedBy": None,
        "helmReleaseProperties": None,
        "statusConditions": [
            {
                "lastTransitionTime": since,
                "message": message,
                "reason": reason,
                "status": "False",
                "type": "Ready",
            }
        ],
    }


def _source_failing(props: Json, clock: _Clock, rng: Random) -> None:
    since = clock.ago(rng.randrange(HOUR, DAY))
    for status in props["statuses"]:
        if status["kind"] == "GitRepository":
            status.update(
                _failing(
                    status["name"],
                    status["namespace"],
                    "GitRepository",
                    "GitOperationFailed",
                    "failed to checkout and determine revision: unable to clone "
                    f"'{props['gitRepository']['url']}': authentication required",
                    since,
                )
            )
        else:
            status.update(
                _failing(
                    status["name"],
                    status["namespace"],
                    status["kind"],
                    "ArtifactFailed",
                    "Source artifact not found, retrying in 30s",
                    since,
                )
            )
    props["complianceState"] = "Non-Compliant"


def _helm_blocked(props: Json, clock: _Clock, rng: Random) -> None:
    since = clock.ago(rng.randrange(HOUR, DAY))
    namespace = props["namespace"]
    kustomizations = [s for s in props["statuses"] if s["kind"] == "Kustomization"]
    applier = kustomizations[-1]
    helm = _failing(
        "podinfo",
        namespace,
        "HelmRelease",
        "InstallFailed",
        "HelmChart 'flux-system/podinfo' is not ready: can't access "
        "'HelmRepository/flux-system/podinfo', cross-namespace references have been blocked",
        since,
    )
    helm["appliedBy"] = {"name": applier["name"], "namespace": applier["namespace"]}
    helm["helmReleaseProperties"] = {
        "lastRevisionApplied": 0,
        "helmChartRef": {"name": f"{namespace}-podinfo", "namespace": namespace},
        "failureCount": 3,
        "installFailureCount": 3,
        "upgradeFailureCount": 0,
    }
    props["statuses"].append(helm)
    old_api = kustomizations[0]
    old_api.update(
        _failing(
            old_api["name"],
            old_api["namespace"],
            "Kustomization",
            "ReconciliationFailed",
            f"HelmRelease/{namespace}/podinfo dry-run failed: no matches for kind "
            '"HelmRelease" in version "helm.toolkit.fluxcd.io/v2beta1"',
            since,
        )
    )
    props["complianceState"] = "Non-Compliant"


def _pending(resource: Json, clock: _Clock, rng: Random) -> None:
    changed = 3 * HOUR + rng.randrange(0, HOUR)
    resource["systemData"]["lastModifiedAt"] = clock.ago(changed)
    if resource["systemData"]["createdAt"] > resource["systemData"]["lastModifiedAt"]:
        resource["systemData"]["createdAt"] = resource["systemData"]["lastModifiedAt"]
    props = resource["properties"]
    props["complianceState"] = "Pending"
    # The agent's last report came with the change; nothing since.
    props["statusUpdatedAt"] = clock.ago(changed)
    props["sourceUpdatedAt"] = clock.ago(changed)
    for status in props["statuses"]:
        for condition in status["statusConditions"]:
            condition["lastTransitionTime"] = min(
                condition["lastTransitionTime"], clock.ago(changed)
            )


def _stale(props: Json, clock: _Clock, rng: Random) -> None:
    quiet = 2 * DAY + rng.randrange(0, 6 * HOUR)
    props["statusUpdatedAt"] = clock.ago(quiet)
    props["sourceUpdatedAt"] = min(props["sourceUpdatedAt"], clock.ago(quiet))
    for status in props["statuses"]:
        for condition in status["statusConditions"]:
            condition["lastTransitionTime"] = min(condition["lastTransitionTime"], clock.ago(quiet))


def add_health(snapshot: Json, seed: int) -> None:
    """Turn a few compliant clusters of ``snapshot`` into each health kind (in place)."""
    defects: dict[str, str] = snapshot["generator"]["defects"]
    n = len(defects)
    if n < MIN_CLUSTERS:
        return
    rng = Random(f"health-{seed}")
    clock = _Clock(snapshot["generator"]["generatedAt"])
    resources: list[Json] = snapshot["resources"]
    children: dict[str, list[Json]] = {}
    clusters: dict[str, Json] = {}
    for r in resources:
        rid = r["id"]
        if f"/providers/{KC_PROVIDER}/" in rid:
            children.setdefault(rid.split(f"/providers/{KC_PROVIDER}/")[0], []).append(r)
        elif rid in defects:
            clusters[rid] = r
    per_kind = max(1, n // PER)
    compliant = [cid for cid in sorted(defects) if defects[cid] == "compliant"]
    rng.shuffle(compliant)
    taken: set[str] = set()
    removed: set[int] = set()

    def pick(fits: Any) -> list[str]:
        chosen = [c for c in compliant if c not in taken and fits(c)][:per_kind]
        taken.update(chosen)
        return chosen

    def configs_of(cid: str) -> list[Json]:
        return [c for c in children.get(cid, ()) if c["type"].endswith("/fluxConfigurations")]

    def drop_children(cid: str) -> None:
        removed.update(id(c) for c in children.get(cid, ()))

    def is_arc(cid: str) -> bool:
        return "/connectedClusters/" in cid

    for kind in _CONFIG_KINDS:
        for cid in pick(lambda c: bool(configs_of(c))):
            first = configs_of(cid)[0]
            props = first["properties"]
            if kind == FLUX_SOURCE_FAILING:
                _source_failing(props, clock, rng)
            elif kind == HELM_RELEASE_BLOCKED:
                _helm_blocked(props, clock, rng)
            elif kind == FLUX_CONFIG_PENDING:
                _pending(first, clock, rng)
            else:
                _stale(props, clock, rng)
            defects[cid] = kind
    for cid in pick(is_arc):
        clusters[cid]["properties"]["kubernetesVersion"] = OLD_K8S
        drop_children(cid)
        defects[cid] = OLD_KUBERNETES
    for cid in pick(is_arc):
        props = clusters[cid]["properties"]
        props["connectivityStatus"] = "Offline"
        props["lastConnectivityTime"] = clock.ago(5 * DAY + rng.randrange(0, 6 * HOUR))
        drop_children(cid)
        defects[cid] = ARC_OFFLINE_NO_EXTENSION
    moving = pick(lambda c: not is_arc(c))
    if moving:
        _move_to_unregistered(snapshot, clusters, moving, defects, drop_children)
    snapshot["resources"] = [r for r in snapshot["resources"] if id(r) not in removed]


def _move_to_unregistered(
    snapshot: Json,
    clusters: dict[str, Json],
    moving: list[str],
    defects: dict[str, str],
    drop_children: Any,
) -> None:
    """Move ``moving`` into an extra subscription that is not registered for the namespace."""
    subs: list[Json] = snapshot["subscriptions"]
    i = len(subs) + 1
    sub_id = sc.subscription_id(i)
    first = subs[0]
    subs.append(
        {
            "id": f"/subscriptions/{sub_id}",
            "subscriptionId": sub_id,
            "displayName": UNREGISTERED_NAME,
            "state": "Enabled",
            "tenantId": first.get("tenantId"),
            "providers": {KC_PROVIDER: "NotRegistered"},
        }
    )
    groups = {r["id"].lower(): r for r in snapshot["resources"] if r["type"] == RESOURCE_GROUPS}
    made: set[str] = set()
    for cid in moving:
        drop_children(cid)
        old = ClusterId.parse(cid)
        new = str(ClusterId(sub_id, old.resource_group, old.cluster_type, old.name))
        group = groups[
            f"/subscriptions/{old.subscription_id}/resourcegroups/{old.resource_group}".lower()
        ]
        gid = f"/subscriptions/{sub_id}/resourceGroups/{old.resource_group}"
        if gid not in made:
            made.add(gid)
            snapshot["resources"].append({**group, "id": gid, "tags": dict(group["tags"])})
        cluster = clusters[cid]
        cluster["id"] = new
        del defects[cid]
        defects[new] = UNREGISTERED_SUBSCRIPTION

"""``fleet snapshot``: export the fleet's current state in the snapshot format (docs/contracts.md,
Fleet snapshot).

Reads every cluster in scope (and its Microsoft.KubernetesConfiguration children) through the
same observer as a sweep, plus the resource groups and the version catalogue, and writes them
as a ``FleetSnapshot`` that ``fleet emulator serve --snapshot`` replays offline. ARM never
returns secrets, so a snapshot holds none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from fleet.azure import retrying
from fleet.azure.inventory import (
    Subscription,
    provider_registrations,
    registered,
    registration_states,
    with_registration,
)
from fleet.azure.observe import observe
from fleet.core.clusters import ClusterFacts
from fleet.core.ids import KC_PROVIDER, RESOURCE_GROUPS
from fleet.jobs.pool import Interrupted, bounded_map
from fleet.jobs.runs import Environment
from fleet.jobs.work import discover, scope
from fleet.observe.observed import ObservedCluster
from fleet.policy.loading import PolicySet


def observed_in_scope(
    env: Environment,
    policy_set: PolicySet | None,
    *,
    cancel: threading.Event | None = None,
    interrupted: Interrupted | None = None,
    read_cluster: bool = False,
) -> tuple[list[Subscription], Iterator[ObservedCluster]]:
    """The subscriptions in scope and every cluster of them, observed as a sweep observes it.

    With policies, only clusters some policy targets (and only the subscriptions they name);
    without, every cluster of the subscriptions in scope. ``read_cluster``: read each cluster
    itself too, so the observations carry its JSON (``ObservedCluster.resource``).
    """
    wanted = (
        scope(policy_set, env.settings.subscriptions)
        if policy_set
        else (frozenset(env.settings.subscriptions) if env.settings.subscriptions else None)
    )
    subscriptions = env.inventory.subscriptions(wanted)
    today = datetime.now(UTC).date()
    # Where Microsoft.KubernetesConfiguration is not registered nothing of it is read (ARM
    # refuses it): those clusters are exported without children, not as read errors.
    states = provider_registrations(env.session, [s.id for s in subscriptions])
    facts_iter: Iterator[ClusterFacts]
    if policy_set is not None:
        facts_iter = (
            t.facts
            for t in discover(
                policy_set, env.inventory, subscriptions, today=today, registrations=states
            )
        )
    else:
        facts_iter = (with_registration(f, states) for f in env.inventory.clusters(subscriptions))

    def read(facts: ClusterFacts) -> ObservedCluster:
        return observe(env.session, facts, read_cluster=read_cluster)

    observed = bounded_map(
        read,
        facts_iter,
        concurrency=env.settings.concurrency,
        cancel=cancel or threading.Event(),
        interrupted=interrupted,
        name="fleet-read",
    )
    return subscriptions, observed


def export_snapshot(
    env: Environment,
    policy_set: PolicySet | None,
    *,
    on_cluster: Callable[[ObservedCluster], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The snapshot of every cluster in scope (``observed_in_scope``), and the ids of clusters
    that could not be read."""
    interrupted = Interrupted()
    # The snapshot exports each cluster's own JSON: read it even when its facts are fresh.
    subscriptions, observed_clusters = observed_in_scope(
        env, policy_set, cancel=cancel, interrupted=interrupted, read_cluster=True
    )
    resources: list[dict[str, Any]] = []
    failed: list[str] = []
    groups: set[tuple[str, str]] = set()
    locations: dict[str, str] = {}
    for observed in observed_clusters:
        if on_cluster:
            on_cluster(observed)
        if observed.read_error or observed.resource is None:
            failed.append(observed.facts.id)
            continue
        f = observed.facts
        groups.add((f.subscription_id, f.resource_group.lower()))
        if registered(f):  # the catalogue is refused where the provider is not registered
            locations.setdefault(f.location.lower(), f.subscription_id)
        resources.append(dict(observed.resource))
        for child in (
            *observed.extensions,
            *observed.flux_configurations,
            *observed.source_control_configurations,
        ):
            resources.append(dict(child))

    for sub in subscriptions:
        client = env.session.resources(sub.id)
        rgs = retrying.call(
            lambda client=client: list(client.resource_groups.list()),  # type: ignore[misc]
            attempts=env.settings.read_attempts,
            what=f"list resource groups of {sub.id}",
        )
        for rg in rgs:
            if (sub.id, str(rg.name).lower()) in groups:
                resources.append(
                    {
                        "id": rg.id,
                        "type": RESOURCE_GROUPS,
                        "name": rg.name,
                        "location": rg.location,
                        "tags": rg.tags or {},
                    }
                )

    versions: dict[str, list[str]] = {}
    for location, sub_id in sorted(locations.items()):
        for train, items in env.inventory.catalog(sub_id, location).items():
            merged = versions.setdefault(train, [])
            merged.extend(v for v in items if v not in merged)

    # One provider read per subscription, so that a replay knows where the resource provider
    # of the configurations is not registered.
    states = registration_states(env.session, [s.id for s in subscriptions])
    resources.sort(key=lambda r: (str(r["id"]).lower().count("/providers/"), str(r["id"]).lower()))
    snapshot: dict[str, Any] = {
        "kind": "FleetSnapshot",
        "subscriptions": [
            {"subscriptionId": s.id, "displayName": s.name}
            | ({"providers": {KC_PROVIDER: states[s.id]}} if states[s.id] != "Registered" else {})
            for s in subscriptions
        ],
        "extensionTypeVersions": {"microsoft.flux": versions},
        "resources": resources,
        "exportedAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if interrupted.happened:
        snapshot["incomplete"] = True
    return snapshot, failed

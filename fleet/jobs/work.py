"""The per-cluster unit of work, shared by the local engine and the Celery workers.

``discover`` turns policies and an inventory into targets (cluster facts + the policies that
apply to each). ``judge_cluster`` observes one target through ARM and judges it with the pure
engine. Both engines call exactly these functions, so they cannot disagree about a cluster.

With a bulk inventory (Resource Graph) ``discover(..., bulk=True)`` hands each target its
observation read in bulk, and ``judge_cluster`` judges it without any per-cluster ARM read;
targets whose bulk rows were incomplete carry no observation and are read from ARM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import date, datetime

from fleet.azure.catalogs import CatalogCache
from fleet.azure.inventory import BulkInventory, Inventory, Subscription, with_registration
from fleet.azure.observe import observe
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts
from fleet.desired.fingerprints import Fingerprints
from fleet.observe.observed import ObservedCluster
from fleet.plan import pipeline
from fleet.policy.loading import PolicySet
from fleet.select import selection
from fleet.select.selection import Applicable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """A cluster at least one policy targets, with those policies."""

    facts: ClusterFacts
    applicable: tuple[Applicable, ...]
    #: The observation a bulk inventory read (None: read the cluster from ARM).
    observed: ObservedCluster | None = None
    #: Notes to attach to the observation (e.g. why bulk rows were not used).
    notes: tuple[str, ...] = ()


def scope(policy_set: PolicySet, configured: list[str] | None) -> frozenset[str] | None:
    """Subscriptions to list: what the policies name, narrowed by ``FLEET_SUBSCRIPTIONS``.

    None means every visible subscription (a policy targets ``"*"`` and nothing narrows it).
    """
    wanted = selection.subscriptions_in_scope(policy_set)
    if configured:
        narrowed = frozenset(s.lower() for s in configured)
        return narrowed if wanted is None else frozenset(s for s in wanted if s.lower() in narrowed)
    return wanted


def discover(
    policy_set: PolicySet,
    inventory: Inventory,
    subscriptions: list[Subscription],
    *,
    today: date,
    bulk: bool = False,
    registrations: Mapping[str, str] | None = None,
) -> Iterator[Target]:
    """Targets, interleaved across subscriptions; clusters no policy targets are skipped.

    ARM's read budget is per subscription: taking clusters round-robin from every
    subscription keeps all their buckets draining at once, instead of exhausting one
    subscription's budget while the others sit idle.

    ``bulk``: when the inventory reads configurations in bulk (``BulkInventory``), targets
    carry their observations (the few without one are read from ARM by ``judge_cluster``).
    ``registrations``: Microsoft.KubernetesConfiguration's state per subscription (one read
    each, ``inventory.provider_registrations``), copied into every cluster's facts so that
    evaluation can call the clusters of an unregistered one ``CLUSTER_INELIGIBLE``.
    """
    states = registrations or {}
    if bulk and isinstance(inventory, BulkInventory):
        for item in inventory.observations(subscriptions):
            facts = with_registration(item.facts, states)
            applicable = selection.applicable(policy_set, facts, today=today)
            if applicable:
                observed = item.observed
                if observed is not None and observed.facts is not facts:
                    observed = replace(observed, facts=with_registration(observed.facts, states))
                yield Target(facts, tuple(applicable), observed, item.notes)
        return
    for facts in interleaved(inventory, subscriptions):
        facts = with_registration(facts, states)
        applicable = selection.applicable(policy_set, facts, today=today)
        if applicable:
            yield Target(facts, tuple(applicable))


def interleaved(
    inventory: Inventory, subscriptions: list[Subscription], *, threads: int = 8
) -> Iterator[ClusterFacts]:
    """Every cluster of the subscriptions, round-robin across the subscriptions listed so far.

    The listings run ``threads`` at a time, and a round takes one cluster from every
    subscription whose listing has arrived, without waiting for the others. Listed one after
    the other inside the first round, each listing held up the round: with 50 subscriptions
    the first 50 clusters took 50 listing round trips (~5 s at ARM's latency) while the
    thread pool and the read buckets sat idle. A failed listing raises here, as before.
    """
    if len(subscriptions) <= 1:
        yield from inventory.clusters(subscriptions)
        return

    def listing(sub: Subscription) -> list[ClusterFacts]:
        return list(inventory.clusters([sub]))

    pool = ThreadPoolExecutor(min(threads, len(subscriptions)), thread_name_prefix="fleet-list")
    try:
        # In subscription order, so the rounds keep a stable order for equal arrival times.
        pending = [pool.submit(listing, sub) for sub in subscriptions]
        streams: list[Iterator[ClusterFacts]] = []
        while pending or streams:
            if not streams:
                wait(pending, return_when=FIRST_COMPLETED)
            done = [f.done() for f in pending]  # once: a listing may finish meanwhile
            streams += [iter(f.result()) for f, d in zip(pending, done, strict=True) if d]
            pending = [f for f, d in zip(pending, done, strict=True) if not d]
            alive = []
            for stream in streams:
                facts = next(stream, None)
                if facts is not None:
                    alive.append(stream)
                    yield facts
            streams = alive
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def judge_cluster(
    session: AzureSession,
    target: Target,
    *,
    catalogs: CatalogCache,
    now: datetime,
    fingerprints: Fingerprints | None = None,
    should_stop: Callable[[], bool] | None = None,
    observed: ObservedCluster | None = None,
) -> pipeline.Judgement:
    """Observe one cluster (unless ``observed`` is given or the target carries one) and
    judge it."""
    if observed is None:
        observed = target.observed
    if observed is None:
        observed = observe(session, target.facts, should_stop=should_stop)
        if target.notes:
            observed = replace(observed, notes=(*observed.notes, *target.notes))
    observed, catalog = catalogs.for_cluster(observed)
    return pipeline.judge(
        observed,
        list(target.applicable),
        catalog=catalog,
        now=now,
        fingerprints=fingerprints,
        fleet_ids=session.fleet_ids(),
    )

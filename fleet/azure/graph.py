"""Azure Resource Graph: the bulk inventory and bulk observation of ``FLEET_INVENTORY=graph``.

Per-cluster ARM reads cost ~4 GETs a cluster against a read bucket of 25/s per subscription;
Resource Graph returns 1,000 rows a query at about 3 queries/s per principal. ``GraphInventory``
implements the ``Inventory`` protocol (subscriptions and the version catalogue through ARM, as
``ArmInventory`` does; clusters from the ``resources`` table, *with* their properties: power
state, connectivity, agent pools) and ``BulkInventory.observations``: every cluster with its
extensions, flux configurations and Flux v1 configurations from
``kubernetesconfigurationresources``, mapped to the same ``ObservedCluster`` (source
``graph``) that ARM reads give, so the engine judges both alike.

How the reads are shaped
------------------------
* **Batches of subscriptions.** Queries are scoped to at most ``batch_subscriptions`` (< 300,
  Microsoft's recommendation) subscriptions at once.
* **Paging** (``fleet.azure.graph_pages``). ``$top`` 1,000 rows, resumed with ``$skipToken``;
  a failed page is retried from its token, not from the first page, by
  ``fleet.azure.retrying`` as every ARM read is.
* **Quota** (``fleet.azure.graph_quota``). ``QuotaPacer`` reads ``x-ms-user-quota-remaining``
  and ``x-ms-user-quota-resets-after`` from every answer and waits for the window to reset
  before a query would be refused; a 429 (another client spending the same quota) waits its
  ``Retry-After`` and is retried without counting as a failed attempt.
* **Streaming, bounded memory.** A batch's cluster rows are read first (facts only: small);
  the configuration rows are then read in *chunks* of at most ``chunk_clusters`` clusters
  (``fleet.azure.graph_queries``: whole subscriptions, whole resource groups, or, for a huge
  resource group, clusters whose names share a prefix) and each chunk is judged and dropped
  before the next but one is read. So memory is bounded by a chunk, not by the fleet, and the
  grouping never relies on the row order or the casing of ids.
  One chunk is read ahead on a background thread while the sweep judges the previous one.

When the graph is not trusted
-----------------------------
Resource Graph lags ARM (seconds to minutes). A cluster whose rows are incomplete is not
judged from them: ``Observation.observed`` is None and the sweep reads it from ARM
(``fleet.azure.observe.observe``), with a note saying why; ``fleet.azure.graph_rows`` gives
the rules. A chunk whose query fails after retries falls back to ARM as a whole.
Writes never trust the graph: remediation always reads ARM first.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from fleet.azure.graph_pages import PAGE_ROWS, GraphPages, GraphStats
from fleet.azure.graph_queries import (
    BATCH_SUBSCRIPTIONS,
    CHUNK_CLUSTERS,
    CLUSTER_QUERY,
    Chunk,
    children_query,
    plan_chunks,
)
from fleet.azure.graph_quota import QuotaPacer
from fleet.azure.graph_rows import child_json, incomplete_child, incomplete_cluster
from fleet.azure.inventory import ArmInventory, Observation, Subscription
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.core.errors import ArmCallFailed
from fleet.core.ids import EXTENSIONS, FLUX_CONFIGURATIONS, InvalidResourceId, split_child
from fleet.core.ids import key as id_key
from fleet.observe.observed import ObservedCluster

log = logging.getLogger(__name__)


class GraphInventory:
    """Inventory and bulk observation through Azure Resource Graph (``FLEET_INVENTORY=graph``)."""

    name = "graph"

    def __init__(
        self,
        session: AzureSession,
        *,
        page_rows: int = PAGE_ROWS,
        batch_subscriptions: int = BATCH_SUBSCRIPTIONS,
        chunk_clusters: int = CHUNK_CLUSTERS,
        prefetch: bool = True,
        pacer: QuotaPacer | None = None,
    ) -> None:
        if not 1 <= batch_subscriptions < 300:
            raise ValueError("batch_subscriptions must be between 1 and 299")
        self._session = session
        self._arm = ArmInventory(session)
        self.batch_subscriptions = batch_subscriptions
        self.chunk_clusters = max(1, chunk_clusters)
        self.prefetch = prefetch
        self.pacer = pacer or QuotaPacer()
        self.stats = GraphStats()
        self._stats_lock = threading.Lock()
        self._pages = GraphPages(
            session, page_rows=page_rows, pacer=self.pacer, stats=self.stats, lock=self._stats_lock
        )

    # -- Inventory --------------------------------------------------------------------

    def subscriptions(self, wanted: frozenset[str] | None) -> list[Subscription]:
        return self._arm.subscriptions(wanted)

    def catalog(self, subscription_id: str, location: str) -> dict[str, list[str]]:
        return self._arm.catalog(subscription_id, location)

    def clusters(self, subscriptions: Iterable[Subscription]) -> Iterator[ClusterFacts]:
        """Every cluster of the subscriptions, with the facts its properties give."""
        for batch in _batched(list(subscriptions), self.batch_subscriptions):
            for facts, _reason in self._cluster_rows(batch):
                yield facts

    # -- BulkInventory ----------------------------------------------------------------

    def observations(self, subscriptions: Iterable[Subscription]) -> Iterator[Observation]:
        """Every cluster with its configurations, chunk by chunk (see the module docstring)."""
        chunks = self._chunk_results(list(subscriptions))
        if self.prefetch:
            chunks = _read_ahead(chunks, depth=1, name="fleet-graph")
        for results in chunks:
            yield from results

    def observe_clusters(self, facts: Sequence[ClusterFacts]) -> list[Observation]:
        """These clusters with their configurations (a remediation verifying a wave: one
        query per chunk, no cluster rows read again); a cluster whose rows are not fresh
        (an operation in progress) comes back with ``observed`` None, as in a sweep."""
        out: list[Observation] = []
        for chunk in plan_chunks(list(facts), limit=self.chunk_clusters):
            out.extend(self._observe_chunk(chunk, {}))
        return out

    def _chunk_results(self, subscriptions: list[Subscription]) -> Iterator[list[Observation]]:
        for batch in _batched(subscriptions, self.batch_subscriptions):
            facts: list[ClusterFacts] = []
            suspect: dict[str, str] = {}
            for f, reason in self._cluster_rows(batch):
                facts.append(f)
                if reason is not None:
                    suspect[f.key] = reason
            for chunk in plan_chunks(facts, limit=self.chunk_clusters):
                yield self._observe_chunk(chunk, suspect)
            del facts

    def _observe_chunk(self, chunk: Chunk, suspect: Mapping[str, str]) -> list[Observation]:
        with self._stats_lock:
            self.stats.chunks += 1
            self.stats.largest_chunk = max(self.stats.largest_chunk, len(chunk.clusters))
        members = {f.key: f for f in chunk.clusters}
        children: dict[str, list[dict[str, Any]]] = {}
        problems: dict[str, str] = {}
        orphans = 0
        try:
            for row in self._pages.rows(children_query(chunk.terms), chunk.subscriptions):
                try:
                    cluster_id, child_type, _name = split_child(str(row["id"]))
                except (InvalidResourceId, KeyError):
                    orphans += 1
                    continue
                key = id_key(cluster_id)
                if key not in members:
                    orphans += 1  # a cluster the resources table does not (yet) show
                    continue
                resource = child_json(row, child_type)
                children.setdefault(key, []).append(resource)
                if key not in problems:
                    reason = incomplete_child(resource)
                    if reason is not None:
                        problems[key] = reason
        except ArmCallFailed as exc:
            with self._stats_lock:
                self.stats.failed_chunks += 1
                self.stats.fallbacks += len(chunk.clusters)
            note = f"Resource Graph query failed ({exc.failure}): read from ARM"
            log.warning("graph chunk of %d clusters: %s", len(chunk.clusters), note)
            return [Observation(f, None, (note,)) for f in chunk.clusters]
        with self._stats_lock:
            self.stats.orphan_rows += orphans
        out: list[Observation] = []
        for facts in chunk.clusters:
            key = facts.key
            reason = suspect.get(key) or problems.get(key)
            if reason is not None:
                self._fell_back(reason)
                out.append(
                    Observation(facts, None, (f"graph rows incomplete ({reason}): read from ARM",))
                )
                continue
            ext: list[dict[str, Any]] = []
            flux: list[dict[str, Any]] = []
            v1: list[dict[str, Any]] = []
            for resource in children.pop(key, ()):
                kind = resource["type"]
                (ext if kind == EXTENSIONS else flux if kind == FLUX_CONFIGURATIONS else v1).append(
                    resource
                )
            out.append(
                Observation(
                    facts,
                    ObservedCluster(
                        facts=facts,
                        extensions=tuple(ext),
                        flux_configurations=tuple(flux),
                        source_control_configurations=tuple(v1),
                        source="graph",
                    ),
                )
            )
        return out

    def _fell_back(self, reason: str) -> None:
        # Reasons name the resource ("extension 'flux' is Creating"); count by their shape.
        shape = reason.split("'")[0] + "..." if "'" in reason else reason
        with self._stats_lock:
            self.stats.fallbacks += 1
            self.stats.fallback_reasons[shape] = self.stats.fallback_reasons.get(shape, 0) + 1

    def _cluster_rows(
        self, batch: Sequence[Subscription]
    ) -> Iterator[tuple[ClusterFacts, str | None]]:
        """(facts, why the row is not trusted or None) for every cluster of a batch."""
        try:
            for row in self._pages.rows(CLUSTER_QUERY, tuple(s.id for s in batch)):
                try:
                    facts = facts_from_arm(row)
                except (ValueError, KeyError) as exc:
                    log.warning("skipping unexpected graph row %s: %s", row.get("id", "?"), exc)
                    continue
                with self._stats_lock:
                    self.stats.cluster_rows += 1
                yield facts, incomplete_cluster(row, facts.cluster_type)
        except ArmCallFailed as exc:
            # Without the cluster rows there is nothing to judge: the sweep stops, as it does
            # when ARM's listing fails.
            raise ArmCallFailed(
                "list clusters through Resource Graph", exc.failure, exc.attempts
            ) from exc


def _batched(items: list[Subscription], size: int) -> Iterator[list[Subscription]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_DONE = object()


def _read_ahead(
    source: Iterator[list[Observation]], *, depth: int, name: str
) -> Iterator[list[Observation]]:
    """Run ``source`` on a thread, ``depth`` items ahead of the consumer.

    The graph reads of the next chunk overlap the judging of this one. When the consumer
    stops early (an interrupted sweep), the thread stops at its next item.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            items.put(exc)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue, then let it finish its current read.
        while thread.is_alive():
            try:
                items.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.2)

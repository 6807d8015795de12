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
* **Paging.** ``$top`` 1,000 rows, resumed with ``$skipToken``; a failed page is retried from
  its token, not from the first page.
* **Quota.** ``QuotaPacer`` reads ``x-ms-user-quota-remaining`` and
  ``x-ms-user-quota-resets-after`` from every answer and waits for the window to reset before
  a query would be refused; a 429 (another client spending the same quota) waits its
  ``Retry-After`` and is retried without counting as a failed attempt.
* **Streaming, bounded memory.** A batch's cluster rows are read first (facts only: small);
  the configuration rows are then read in *chunks* of at most ``chunk_clusters`` clusters
  (whole subscriptions, whole resource groups, or, for a huge resource group, clusters whose
  names share a prefix: ``id startswith ...``, which ignores case like ARM ids do) and each
  chunk is judged and dropped before the next but one is read. So memory is bounded by a chunk,
  not by the fleet, and the grouping never relies on the row order or the casing of ids.
  One chunk is read ahead on a background thread while the sweep judges the previous one.

When the graph is not trusted
-----------------------------
Resource Graph lags ARM (seconds to minutes). A cluster whose rows are incomplete is not
judged from them: ``Observation.observed`` is None and the sweep reads it from ARM
(``fleet.azure.observe.observe``), with a note saying why. ``incomplete_cluster`` and
``incomplete_child`` give the rules: a cluster row without properties, an AKS row without
``powerState``, an Arc row without ``connectivityStatus``, a provisioning state still in
progress (cluster or child), a child row without ``properties``, an extension without
``extensionType`` or ``provisioningState``, a flux or Flux v1 configuration without
``provisioningState``. A chunk whose query fails after retries falls back to ARM as a whole.
Writes never trust the graph: remediation always reads ARM first.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.rest import HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models as kc_models

from fleet.azure import retrying
from fleet.azure.errors import describe
from fleet.azure.inventory import ArmInventory, Observation, Subscription
from fleet.azure.ratelimit import retry_after_seconds
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.core.ids import (
    CLUSTER_PROVIDERS,
    EXTENSIONS,
    FLUX_CONFIGURATIONS,
    SOURCE_CONTROL_CONFIGURATIONS,
    InvalidResourceId,
    split_child,
)
from fleet.core.ids import key as id_key
from fleet.observe.observed import ObservedCluster

log = logging.getLogger(__name__)

#: Rows per page: Resource Graph's maximum ``$top``.
PAGE_ROWS = 1000
#: Subscriptions per query: Microsoft recommends batches of fewer than 300.
BATCH_SUBSCRIPTIONS = 250
#: Clusters whose configuration rows are read (and held) at once. About 2.3 rows a cluster:
#: ~7 full pages a chunk, a few tens of MB of parsed JSON.
CHUNK_CLUSTERS = 3000
#: OR-ed terms in one chunk query (keeps the query text short).
MAX_TERMS = 64
#: 429s tolerated for one page before the page counts as failed.
MAX_THROTTLED = 30
#: Resource Graph's query endpoint and the api-version azure-mgmt-resourcegraph 8 speaks.
GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
GRAPH_API_VERSION = "2021-03-01"
#: As the SDK maps statuses to exceptions (``fleet.azure.errors.describe`` reads them).
_ERROR_MAP = {401: ClientAuthenticationError, 404: ResourceNotFoundError}

CLUSTER_TYPES = tuple(t.lower() for t in CLUSTER_PROVIDERS.values())
CHILD_TYPE_NAMES = tuple(
    t.lower() for t in (EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS)
)
#: Provisioning states after which nothing is moving (anything else is "in progress").
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled", "cancelled"})


def kql_string(value: str) -> str:
    """A KQL string literal (single-quoted, backslash escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(kql_string(v) for v in values) + ")"


CLUSTER_QUERY = (
    f"resources | where type in~ {_in_list(CLUSTER_TYPES)}"
    " | project id, name, type, location, tags, properties, subscriptionId, resourceGroup"
    " | order by id asc"
)


def children_query(terms: Sequence[str]) -> str:
    """The configuration rows of a chunk (``terms`` OR-ed; none: the whole scope)."""
    query = f"kubernetesconfigurationresources | where type in~ {_in_list(CHILD_TYPE_NAMES)}"
    if terms:
        query += " | where " + " or ".join(f"({t})" for t in terms)
    return query + " | project id, name, type, properties, identity, plan | order by id asc"


# --------------------------------------------------------------------------- the quota


def parse_duration(value: str) -> float | None:
    """Seconds of a ``[d.]hh:mm:ss[.fff]`` duration (``x-ms-user-quota-resets-after``)."""
    try:
        days = 0
        head, _, rest = value.strip().partition(":")
        if "." in head:
            d, head = head.split(".", 1)
            days = int(d)
        minutes, _, seconds = rest.partition(":")
        return days * 86400 + int(head) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


class QuotaPacer:
    """Keeps Resource Graph queries inside the principal's quota (a fixed window).

    The window's reset time is known only to the second (``resets-after`` is ``hh:mm:ss``);
    each answer of a window bounds it to ``(sent + after - 1, received + after]``. Intersecting
    the bounds of every answer of the window narrows that to well under a second, so the pacer
    waits for the earliest moment the quota is surely back instead of up to a second more.
    If the server still answers 429 (its seconds were rounded the other way, or another client
    spent the quota) the 429's ``Retry-After`` is honoured and a small margin is added to the
    waits that follow.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._reset_at = math.inf
        self._margin = 0.02
        self.waited = 0.0
        self.waits = 0
        self.throttled = 0

    def before(self) -> None:
        """Wait until a query may be sent."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self._remaining is not None and self._remaining <= 0:
                wait = max(0.0, self._reset_at + self._margin - now)
        if wait > 0:
            self._sleep(wait)
            with self._lock:
                self.waited += wait
                self.waits += 1
        with self._lock:
            if self._remaining is not None and self._remaining <= 0:
                # The window has turned: how much is left is unknown until the next answer.
                self._remaining = None
                self._reset_at = math.inf
            elif self._remaining is not None:
                self._remaining -= 1  # reserve it: a concurrent caller must not reuse it

    def after(self, sent: float, received: float, headers: Mapping[str, str]) -> None:
        """Account for an answer (any status) and its quota headers."""
        remaining = headers.get("x-ms-user-quota-remaining")
        after = parse_duration(headers.get("x-ms-user-quota-resets-after") or "")
        if remaining is None or after is None:
            return
        try:
            left = int(remaining)
        except ValueError:
            return
        with self._lock:
            new_window = (
                self._remaining is None or left > self._remaining + 1 or received > self._reset_at
            )
            bound = received + after
            if new_window:
                self._reset_at = bound
            else:
                self._reset_at = min(self._reset_at, bound)
            # Never earlier than what this answer allows (sent + after - 1): a bound from an
            # earlier window that slipped through would make the pacer send too soon.
            self._reset_at = max(self._reset_at, sent + after - 1.0)
            self._remaining = left

    def refused(self, retry_after: float) -> None:
        """A 429: the quota is spent until ``retry_after`` from now."""
        with self._lock:
            self.throttled += 1
            self._remaining = 0
            self._reset_at = max(
                self._clock() + retry_after, self._reset_at if self._reset_at != math.inf else 0.0
            )
            # The estimate was early, or someone else spends this principal's quota: either
            # way, from now on wait a little longer past each reset.
            self._margin = min(1.0, self._margin + 0.25)


# --------------------------------------------------------------------------- rows to ARM JSON


def _schema_of(type_name: str) -> Any:
    """A canonical-key tree for an SDK (msrest) type name, or None for scalars."""
    if type_name.startswith("[") and type_name.endswith("]"):
        inner = _schema_of(type_name[1:-1])
        return ("list", inner) if inner is not None else None
    if type_name.startswith("{") and type_name.endswith("}"):
        inner = _schema_of(type_name[1:-1])
        return ("map", inner) if inner is not None else None
    model = getattr(kc_models, type_name, None)
    if model is None or not hasattr(model, "_attribute_map"):
        return None
    return _model_schema(model)


@cache
def _model_schema(model: type) -> dict[str, tuple[str, Any]]:
    """``{lower-case key: (canonical key, sub-schema)}`` for one model's wire keys."""
    out: dict[str, tuple[str, Any]] = {}
    for spec in model._attribute_map.values():  # type: ignore[attr-defined]
        wire = str(spec["key"]).replace("\\.", ".")
        parts = wire.split(".")
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part.lower()] = (part, _lazy(str(spec["type"])))
            else:
                existing = node.get(part.lower())
                if existing is None or not isinstance(existing[1], dict):
                    existing = (part, {})
                    node[part.lower()] = existing
                node = existing[1]
    return out


class _lazy:
    """A schema resolved on first use (models refer to each other, sometimes cyclically)."""

    __slots__ = ("_done", "_value", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._value: Any = None
        self._done = False

    def get(self) -> Any:
        if not self._done:
            self._value = _schema_of(self.name)
            self._done = True
        return self._value


def _canonical(value: Any, schema: Any) -> Any:
    """``value`` with its keys spelled as ARM spells them (Resource Graph rows of some types
    carry PascalCase keys); unknown keys and user keys (maps) are kept as they are."""
    if isinstance(schema, _lazy):
        schema = schema.get()
    if schema is None:
        return value
    if isinstance(schema, tuple):
        kind, inner = schema
        if kind == "list" and isinstance(value, list):
            return [_canonical(v, inner) for v in value]
        if kind == "map" and isinstance(value, dict):
            return {k: _canonical(v, inner) for k, v in value.items()}
        return value
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for k, v in value.items():
        known = schema.get(k.lower()) if isinstance(k, str) else None
        if known is None:
            out[k] = v
        else:
            out[known[0]] = _canonical(v, known[1])
    return out


_PROPERTIES_SCHEMA: dict[str, Any] = {}


def _properties_schema(child_type: str) -> dict[str, tuple[str, Any]]:
    found = _PROPERTIES_SCHEMA.get(child_type)
    if found is None:
        model = {
            EXTENSIONS: kc_models.Extension,
            FLUX_CONFIGURATIONS: kc_models.FluxConfiguration,
            SOURCE_CONTROL_CONFIGURATIONS: kc_models.SourceControlConfiguration,
        }[child_type]
        found = _model_schema(model)["properties"][1]
        _PROPERTIES_SCHEMA[child_type] = found
    schema: dict[str, tuple[str, Any]] = found
    return schema


def canonical_properties(child_type: str, props: dict[str, Any]) -> dict[str, Any]:
    """ARM's key spelling for a child's ``properties`` (a no-op walk when already canonical).

    When every top-level key is spelled as ARM spells it the row came from a source that
    keeps ARM's casing, and the (costly) deep walk is skipped.
    """
    schema = _properties_schema(child_type)
    if all(not isinstance(k, str) or schema.get(k.lower(), (k,))[0] == k for k in props):
        return props
    result: dict[str, Any] = _canonical(props, schema)
    return result


def child_json(row: Mapping[str, Any], child_type: str) -> dict[str, Any]:
    """A ``kubernetesconfigurationresources`` row as the ARM JSON of the resource."""
    rid = str(row["id"])
    props = row.get("properties")
    out: dict[str, Any] = {
        "id": rid,
        "name": row.get("name") or rid.rstrip("/").rsplit("/", 1)[-1],
        "type": child_type,
        "properties": canonical_properties(child_type, props) if isinstance(props, dict) else props,
    }
    for extra in ("identity", "plan"):
        if row.get(extra):
            out[extra] = row[extra]
    return out


# --------------------------------------------------------------------------- completeness


def _in_progress(props: Mapping[str, Any]) -> str | None:
    state = props.get("provisioningState")
    if isinstance(state, str) and state and state.lower() not in TERMINAL_STATES:
        return state
    return None


def incomplete_cluster(row: Mapping[str, Any], cluster_type: str) -> str | None:
    """Why a cluster row cannot be trusted for judging (None when it can)."""
    props = row.get("properties")
    if not isinstance(props, dict) or not props:
        return "the cluster row has no properties"
    if cluster_type == "managedClusters":
        power = props.get("powerState")
        if not isinstance(power, dict) or not power.get("code"):
            return "the cluster row has no powerState"
    elif not props.get("connectivityStatus"):
        return "the cluster row has no connectivityStatus"
    moving = _in_progress(props)
    if moving:
        return f"the cluster is {moving}"
    return None


def incomplete_child(resource: Mapping[str, Any]) -> str | None:
    """Why a configuration row (already in ARM shape) cannot be trusted (None when it can)."""
    child_type = resource["type"]
    what = f"{child_type.rsplit('/', 1)[-1]} {resource.get('name')!r}"
    props = resource.get("properties")
    if not isinstance(props, dict):
        return f"{what} has no properties"
    if not props.get("provisioningState"):
        return f"{what} has no provisioningState"
    if child_type == EXTENSIONS and not props.get("extensionType"):
        return f"{what} has no extensionType"
    moving = _in_progress(props)
    if moving:
        return f"{what} is {moving}"
    return None


# --------------------------------------------------------------------------- chunks


@dataclass(frozen=True, slots=True)
class Chunk:
    """Clusters whose configuration rows are read by one paged query."""

    subscriptions: tuple[str, ...]
    #: KQL conditions OR-ed together; empty: every row of the subscriptions.
    terms: tuple[str, ...]
    clusters: tuple[ClusterFacts, ...]


@dataclass(slots=True)
class _Unit:
    subscription: str
    term: str | None  # None: the whole subscription
    clusters: list[ClusterFacts]


def _name_units(
    sub: str, prefix_path: str, members: list[ClusterFacts], limit: int
) -> Iterator[_Unit]:
    """Split the clusters of one (resource group, type) by name prefix into units <= limit.

    A term ``id startswith '<group path>/<prefix>'`` selects the rows of exactly the clusters
    whose name starts with the prefix; a name that is itself a prefix of others gets
    ``<name>/`` so its term does not take theirs.
    """

    def split(prefix: str, group: list[ClusterFacts]) -> Iterator[_Unit]:
        if len(group) <= limit:
            yield _Unit(sub, f"id startswith {kql_string(prefix_path + prefix)}", group)
            return
        exact = [f for f in group if f.name.lower() == prefix]
        if exact:
            yield _Unit(sub, f"id startswith {kql_string(prefix_path + prefix + '/')}", exact)
        by_next: dict[str, list[ClusterFacts]] = {}
        for f in group:
            name = f.name.lower()
            if len(name) > len(prefix):
                by_next.setdefault(name[len(prefix)], []).append(f)
        for char in sorted(by_next):
            yield from split(prefix + char, by_next[char])

    yield from split("", members)


def plan_chunks(
    clusters: Iterable[ClusterFacts],
    *,
    limit: int = CHUNK_CLUSTERS,
    max_terms: int = MAX_TERMS,
) -> Iterator[Chunk]:
    """Group clusters into chunks of at most ``limit`` clusters each (in the given order of
    subscriptions), each selectable by one query: whole subscriptions when they fit, else
    whole resource groups, else name prefixes within a resource group and cluster type."""
    by_sub: dict[str, list[ClusterFacts]] = {}
    for facts in clusters:
        by_sub.setdefault(facts.subscription_id.lower(), []).append(facts)

    def units() -> Iterator[_Unit]:
        for members in by_sub.values():
            sub_id = members[0].subscription_id
            if len(members) <= limit:
                yield _Unit(sub_id, None, members)
                continue
            by_rg: dict[str, list[ClusterFacts]] = {}
            for f in members:
                by_rg.setdefault(f.resource_group.lower(), []).append(f)
            for rg, group in sorted(by_rg.items()):
                if len(group) <= limit:
                    yield _Unit(
                        sub_id,
                        f"subscriptionId =~ {kql_string(sub_id)} and "
                        f"resourceGroup =~ {kql_string(rg)}",
                        group,
                    )
                    continue
                by_type: dict[str, list[ClusterFacts]] = {}
                for f in group:
                    by_type.setdefault(f.cluster_type, []).append(f)
                for ctype, typed in sorted(by_type.items()):
                    path = (
                        f"/subscriptions/{sub_id}/resourceGroups/{group[0].resource_group}"
                        f"/providers/{CLUSTER_PROVIDERS[ctype]}/"  # type: ignore[index]
                    )
                    yield from _name_units(sub_id, path, typed, limit)

    pending: list[_Unit] = []
    size = 0

    def flush() -> Chunk:
        subs = tuple(dict.fromkeys(u.subscription for u in pending))
        if all(u.term is None for u in pending):
            terms: tuple[str, ...] = ()
        else:
            terms = tuple(
                u.term if u.term is not None else f"subscriptionId =~ {kql_string(u.subscription)}"
                for u in pending
            )
        return Chunk(subs, terms, tuple(f for u in pending for f in u.clusters))

    for unit in units():
        if pending and (
            size + len(unit.clusters) > limit
            or len(pending) + 1 > max_terms
            or len({u.subscription for u in pending} | {unit.subscription}) > BATCH_SUBSCRIPTIONS
        ):
            yield flush()
            pending, size = [], 0
        pending.append(unit)
        size += len(unit.clusters)
    if pending:
        yield flush()


# --------------------------------------------------------------------------- statistics


@dataclass
class GraphStats:
    """What the graph reads cost (for the sweep's log and the benchmarks)."""

    queries: int = 0
    pages: int = 0
    rows: int = 0
    cluster_rows: int = 0
    child_rows: int = 0
    orphan_rows: int = 0
    chunks: int = 0
    largest_chunk: int = 0
    fallbacks: int = 0
    failed_chunks: int = 0
    throttled: int = 0
    quota_waits: int = 0
    quota_waited_seconds: float = 0.0
    fallback_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "pages": self.pages,
            "rows": self.rows,
            "clusterRows": self.cluster_rows,
            "childRows": self.child_rows,
            "orphanRows": self.orphan_rows,
            "chunks": self.chunks,
            "largestChunk": self.largest_chunk,
            "fallbacks": self.fallbacks,
            "failedChunks": self.failed_chunks,
            "throttled": self.throttled,
            "quotaWaits": self.quota_waits,
            "quotaWaitedSeconds": round(self.quota_waited_seconds, 3),
            "fallbackReasons": dict(self.fallback_reasons),
        }


class GraphQueryFailed(RuntimeError):
    """A Resource Graph query failed after retries."""


# --------------------------------------------------------------------------- the inventory


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
        if not 1 <= page_rows <= PAGE_ROWS:
            raise ValueError(f"page_rows must be between 1 and {PAGE_ROWS}")
        if not 1 <= batch_subscriptions < 300:
            raise ValueError("batch_subscriptions must be between 1 and 299")
        self._session = session
        self._arm = ArmInventory(session)
        self.page_rows = page_rows
        self.batch_subscriptions = batch_subscriptions
        self.chunk_clusters = max(1, chunk_clusters)
        self.prefetch = prefetch
        self.pacer = pacer or QuotaPacer()
        self.stats = GraphStats()
        self._stats_lock = threading.Lock()

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
            for row in self._rows(children_query(chunk.terms), chunk.subscriptions):
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
        except GraphQueryFailed as exc:
            with self._stats_lock:
                self.stats.failed_chunks += 1
                self.stats.fallbacks += len(chunk.clusters)
            note = f"Resource Graph query failed ({exc}): read from ARM"
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
            for row in self._rows(CLUSTER_QUERY, tuple(s.id for s in batch)):
                try:
                    facts = facts_from_arm(row)
                except (ValueError, KeyError) as exc:
                    log.warning("skipping unexpected graph row %s: %s", row.get("id", "?"), exc)
                    continue
                with self._stats_lock:
                    self.stats.cluster_rows += 1
                yield facts, incomplete_cluster(row, facts.cluster_type)
        except GraphQueryFailed as exc:
            # Without the cluster rows there is nothing to judge: the sweep stops, as it does
            # when ARM's listing fails.
            raise retrying.ArmCallFailed(
                "list clusters through Resource Graph", describe(exc.__cause__ or exc), 1
            ) from exc

    # -- paging, quota, retries --------------------------------------------------------

    def _rows(self, query: str, subscriptions: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Every row of a query over the subscriptions, page by page."""
        token: str | None = None
        while True:
            page = self._page(query, subscriptions, token)
            data = page.get("data")
            if not isinstance(data, list):
                raise GraphQueryFailed(f"unexpected result format {type(data).__name__}")
            with self._stats_lock:
                self.stats.pages += 1
                self.stats.rows += len(data)
                if "kubernetesconfigurationresources" in query:
                    self.stats.child_rows += len(data)
            yield from data
            token = page.get("$skipToken")
            if not token:
                if str(page.get("resultTruncated")).lower() == "true":
                    raise GraphQueryFailed("the result was truncated without a $skipToken")
                return

    def _page(self, query: str, subscriptions: Sequence[str], token: str | None) -> dict[str, Any]:
        """One page of a query (the ``QueryResponse`` JSON), within the quota, with retries."""
        client = self._session.graph()
        options: dict[str, Any] = {"$top": self.page_rows, "resultFormat": "objectArray"}
        if token:
            options["$skipToken"] = token
        body = {"subscriptions": list(subscriptions), "query": query, "options": options}
        attempts = self._session.settings.read_attempts
        attempt = 0
        throttled = 0
        while True:
            self.pacer.before()
            sent = time.monotonic()
            with self._stats_lock:
                self.stats.queries += 1
            try:
                # The SDK client's own raw-request path: its pipeline (credential, fleet's
                # budget policy, retries, transport) without the typed model layer, which
                # parses a 1,000-row page twice with ``json`` and then copies every value of
                # it (``deserialize_object``): ~45 % of the graph path's CPU. ``stream``
                # skips the pipeline's own JSON decoding; orjson parses the page once.
                # retry_status=0: 429s and 5xx come back here, where the quota is paced
                # and a 429 does not count as a failed attempt.
                request = HttpRequest(
                    "POST", GRAPH_PATH, params={"api-version": GRAPH_API_VERSION}, json=body
                )
                response = client._send_request(request, stream=True, retry_status=0)
                try:
                    response.read()
                finally:
                    response.close()
                self.pacer.after(sent, time.monotonic(), response.headers)
                if response.status_code != 200:
                    map_error(response.status_code, response, _ERROR_MAP)
                    raise HttpResponseError(response=response, error_format=ARMErrorFormat)
                page: dict[str, Any] = orjson.loads(response.content)
                return page
            except HttpResponseError as exc:
                headers = getattr(exc.response, "headers", None) or {}
                if exc.status_code == 429 and throttled < MAX_THROTTLED:
                    throttled += 1
                    with self._stats_lock:
                        self.stats.throttled += 1
                    self.pacer.refused(retry_after_seconds(headers, default=1.0))
                    continue
                failure = describe(exc)
                attempt += 1
                if not failure.retryable or attempt >= attempts:
                    raise GraphQueryFailed(str(failure)) from exc
                time.sleep(retrying.backoff(attempt))
            except Exception as exc:
                failure = describe(exc)
                attempt += 1
                if not failure.retryable or attempt >= attempts:
                    raise GraphQueryFailed(str(failure)) from exc
                time.sleep(retrying.backoff(attempt))
            finally:
                with self._stats_lock:
                    self.stats.quota_waits = self.pacer.waits
                    self.stats.quota_waited_seconds = self.pacer.waited


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

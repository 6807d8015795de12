"""Resource Graph queries: the KQL fleet sends, and the chunks of clusters each query reads.

A sweep reads the cluster rows of a batch of subscriptions with ``CLUSTER_QUERY``, then the
configuration rows (``kubernetesconfigurationresources``) of at most ``CHUNK_CLUSTERS``
clusters at a time with ``children_query(chunk.terms)``. ``plan_chunks`` groups the clusters so
that one query selects exactly the rows of its chunk: whole subscriptions when they fit, else
whole resource groups, else clusters whose names share a prefix (``id startswith ...``, which
ignores case as ARM ids do). The grouping never relies on the order or the casing of row ids.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from fleet.core.clusters import ClusterFacts
from fleet.core.ids import (
    CLUSTER_PROVIDERS,
    EXTENSIONS,
    FLUX_CONFIGURATIONS,
    SOURCE_CONTROL_CONFIGURATIONS,
)

#: Subscriptions per query: Microsoft recommends batches of fewer than 300.
BATCH_SUBSCRIPTIONS = 250
#: Clusters whose configuration rows are read (and held) at once. About 2.3 rows a cluster:
#: ~7 full pages a chunk, a few tens of MB of parsed JSON.
CHUNK_CLUSTERS = 3000
#: OR-ed terms in one chunk query (keeps the query text short).
MAX_TERMS = 64

CLUSTER_TYPES = tuple(t.lower() for t in CLUSTER_PROVIDERS.values())
CHILD_TYPE_NAMES = tuple(
    t.lower() for t in (EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS)
)


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

"""Chunk planning: every cluster lands in exactly one chunk of at most ``limit`` clusters, and
each chunk's query selects exactly the configuration rows of its own clusters, whatever the
cluster names (names that are prefixes of others), the case the row ids are spelled in, and
the mix of subscriptions, resource groups and cluster types.

The queries are run with the emulator's KQL evaluator (``fleet.emulator.kql_eval``), the same one
that answers the emulated Resource Graph.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.azure.graph_queries import Chunk, children_query, kql_string, plan_chunks
from fleet.core.clusters import ClusterFacts
from fleet.core.ids import CLUSTER_PROVIDERS, ClusterType
from fleet.emulator import kql, kql_eval

SUBS = ("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-00000000000A")
GROUPS = ("rg-Prod-1", "rg-dev")
KC = "/providers/Microsoft.KubernetesConfiguration"


def facts(sub: str, rg: str, ctype: ClusterType, name: str) -> ClusterFacts:
    cid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{CLUSTER_PROVIDERS[ctype]}/{name}"
    return ClusterFacts(
        id=cid, name=name, cluster_type=ctype, subscription_id=sub, resource_group=rg
    )


def rows_of(f: ClusterFacts, case: int) -> list[dict[str, Any]]:
    """Configuration rows of a cluster, ids spelled in one of several casings (ARM ids are
    case-insensitive and real rows are not consistent about it)."""
    cid = f.id
    if case == 1:
        cid = cid.replace("resourceGroups", "resourcegroups").replace("Microsoft.", "microsoft.")
    elif case == 2:
        cid = cid.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
    out = []
    for kind, name in (("extensions", "flux"), ("fluxConfigurations", "cluster-config")):
        out.append(
            {
                "id": f"{cid}{KC}/{kind}/{name}",
                "name": name,
                "type": f"microsoft.kubernetesconfiguration/{kind.lower()}",
                "subscriptionId": f.subscription_id,
                "resourceGroup": f.resource_group.lower(),
                "properties": {},
                "identity": None,
                "plan": None,
            }
        )
    return out


def select(chunk: Chunk, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    scope = {s.lower() for s in chunk.subscriptions}
    scoped = [r for r in rows if r["subscriptionId"].lower() in scope]
    return kql_eval.run(kql.parse(children_query(chunk.terms)), scoped)


clusters_st = st.lists(
    st.tuples(
        st.sampled_from(SUBS),
        st.sampled_from(GROUPS),
        st.sampled_from(["managedClusters", "connectedClusters"]),
        st.text(alphabet="ab1-_", min_size=1, max_size=4),
        st.integers(0, 2),
    ),
    max_size=40,
    unique_by=lambda t: (t[0], t[1].lower(), t[2], t[3].lower()),
)


@settings(max_examples=150, deadline=None)
@given(clusters=clusters_st, limit=st.integers(1, 7), max_terms=st.integers(1, 5))
def test_chunks_partition_the_clusters_and_select_exactly_their_rows(
    clusters: list[tuple[str, str, ClusterType, str, int]], limit: int, max_terms: int
) -> None:
    members = [facts(s, rg, t, n) for s, rg, t, n, _ in clusters]
    rows = [
        row for (*_, case), f in zip(clusters, members, strict=True) for row in rows_of(f, case)
    ]
    chunks = list(plan_chunks(members, limit=limit, max_terms=max_terms))
    seen = [f.key for c in chunks for f in c.clusters]
    assert sorted(seen) == sorted(f.key for f in members)  # each cluster exactly once
    for chunk in chunks:
        assert 1 <= len(chunk.clusters) <= limit
        assert len(chunk.terms) <= max_terms
        got = sorted(r["id"].lower() for r in select(chunk, rows))
        want = sorted(
            r["id"].lower()
            for (*_, case), f in zip(clusters, members, strict=True)
            if f in chunk.clusters
            for r in rows_of(f, case)
        )
        assert got == want


def test_small_subscriptions_share_a_chunk_without_any_filter() -> None:
    members = [facts(SUBS[0], "rg", "managedClusters", f"c{i}") for i in range(3)] + [
        facts(SUBS[1], "rg", "managedClusters", f"c{i}") for i in range(3)
    ]
    (chunk,) = plan_chunks(members, limit=10)
    assert chunk.terms == ()
    assert chunk.subscriptions == SUBS
    assert children_query(()).count("where") == 1  # the type filter only


def test_a_big_subscription_is_split_by_resource_group_then_by_name() -> None:
    members = [facts(SUBS[0], "rg-a", "managedClusters", f"aks-{i:02d}") for i in range(12)]
    members += [facts(SUBS[0], "rg-b", "managedClusters", "aks-x")]
    chunks = list(plan_chunks(members, limit=5))
    terms = [t for c in chunks for t in c.terms]
    assert any("resourceGroup =~ 'rg-b'" in t for t in terms)
    assert any("startswith" in t and "aks-0" in t for t in terms)
    assert all(len(c.clusters) <= 5 for c in chunks)


def test_kql_strings_are_escaped() -> None:
    assert kql_string("it's") == "'it\\'s'"
    assert kql_string("a\\b") == "'a\\\\b'"
    query = kql.parse(children_query((f"resourceGroup =~ {kql_string(chr(39) + 'x')}",)))
    assert query.table == "kubernetesconfigurationresources"

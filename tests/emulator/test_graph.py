"""Azure Resource Graph: the KQL subset, scoping, paging with $skipToken, formats, errors."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models as kc_models
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from fleet.emulator import graph, kql, kql_eval
from fleet.emulator.testing import RunningEmulator

from .conftest import AKS, GIT_URL, RG_PROD, SUB1, SUB2, graph_client, kc_client

CLUSTERS = (
    "resources | where type in~ ('microsoft.containerservice/managedclusters', "
    "'microsoft.kubernetes/connectedclusters') "
    "| project id, name, type, location, tags, properties, subscriptionId, resourceGroup "
    "| order by id asc"
)
ROWS: list[dict[str, Any]] = [
    {
        "id": "/a",
        "name": "Alpha",
        "type": "x/y",
        "location": "westeurope",
        "tags": {"env": "prod"},
        "properties": {
            "connectivityStatus": "Offline",
            "ExtensionType": "microsoft.flux",
            "n": 3,
            "on": True,
        },
    },
    {
        "id": "/b",
        "name": "beta",
        "type": "x/y",
        "location": "eastus",
        "tags": {},
        "properties": {"connectivityStatus": "Connected", "n": 1, "on": False},
    },
    {
        "id": "/c",
        "name": "gamma",
        "type": "x/z",
        "location": "westeurope",
        "tags": {"env": "dev"},
        "properties": {},
    },
]


def _names(query: str) -> list[str]:
    return [r["name"] for r in kql_eval.run(kql.parse(query), ROWS)]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("resources", ["Alpha", "beta", "gamma"]),
        ("Resources | where type == 'x/y'", ["Alpha", "beta"]),
        ("resources | where name == 'alpha'", []),  # == is case-sensitive
        ("resources | where name =~ 'ALPHA'", ["Alpha"]),
        ("resources | where name != 'beta'", ["Alpha", "gamma"]),
        ("resources | where name !~ 'ALPHA'", ["beta", "gamma"]),
        ("resources | where name in ('Alpha', 'gamma')", ["Alpha", "gamma"]),
        ("resources | where name in~ ('ALPHA', 'BETA')", ["Alpha", "beta"]),
        ("resources | where name !in~ ('ALPHA')", ["beta", "gamma"]),
        ("resources | where name !in ('Alpha')", ["beta", "gamma"]),
        ("resources | where name startswith 'ga'", ["gamma"]),
        ("resources | where name endswith 'TA'", ["beta"]),
        ("resources | where name contains 'LPH'", ["Alpha"]),
        ("resources | where name contains_cs 'LPH'", []),
        ("resources | where tags.env == 'prod'", ["Alpha"]),
        ("resources | where tags['env'] =~ 'DEV'", ["gamma"]),
        ("resources | where properties.connectivityStatus =~ 'offline'", ["Alpha"]),
        ("resources | where properties.extensionType == 'microsoft.flux'", ["Alpha"]),
        ("resources | where properties.n == 3", ["Alpha"]),
        ("resources | where properties.on == false", ["beta"]),
        ("resources | where properties.missing != 'x'", []),  # null fails every comparison
        ("resources | where location =~ 'westeurope' and type == 'x/y'", ["Alpha"]),
        ("resources | where name == 'beta' or name == 'gamma' and location == 'nowhere'", ["beta"]),
        (
            "resources | where (name == 'beta' or name == 'gamma') and location == 'eastus'",
            ["beta"],
        ),
        ("resources | order by name", ["gamma", "beta", "Alpha"]),  # KQL's default is desc
        ("resources | order by name asc", ["Alpha", "beta", "gamma"]),
        ("resources | sort by location asc, name desc", ["beta", "gamma", "Alpha"]),
        ("resources | order by id asc | take 2", ["Alpha", "beta"]),
        ("resources | limit 1 | where name == 'beta'", []),
        ('resources | where name == "beta"', ["beta"]),
    ],
)
def test_kql_subset(query: str, names: list[str]) -> None:
    assert _names(query) == names


def test_project_keeps_only_the_named_columns_in_order() -> None:
    rows = kql_eval.run(kql.parse("resources | project name, id | where name == 'beta'"), ROWS)
    assert rows == [{"name": "beta", "id": "/b"}]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("securityresources", "unsupported table"),
        ("resources | extend x = 1", "unsupported operator 'extend'"),
        ("resources | summarize count() by type", "unsupported operator 'summarize'"),
        ("resources | where Type == 'x'", "unknown column or function 'Type'"),
        ("resources | where tolower(name) == 'x'", "unknown column or function 'tolower'"),
        ("resources | where name has 'x'", "unsupported operator 'has'"),
        ("resources | where name ==", "unexpected end of query"),
        ("resources | where name == type", "expected a string, number or boolean"),
        ("resources | project name | where id == 'x'", "unknown column or function 'id'"),
        ("resources | project nope", "unknown column 'nope'"),
        ("resources | where name.x == 'y'", "is a string"),
        ("resources | take x", "non-negative integer"),
        ("resources | where name == 'x' | join (resources) on id", "unsupported operator 'join'"),
        ("resources | where not(name == 'x')", "unknown column or function 'not'"),
        ("resources | where name == 'x' ;", "unexpected character"),
    ],
)
def test_anything_else_is_refused(query: str, message: str) -> None:
    with pytest.raises(kql.GraphQueryError, match=message):
        kql.parse(query)


def _query(emu: RunningEmulator, query: str, subs: list[str] | None = None, **options: Any) -> Any:
    request = QueryRequest(
        subscriptions=subs, query=query, options=QueryRequestOptions(**options) if options else None
    )
    return graph_client(emu).resources(request)


def test_clusters_across_subscriptions_and_scoping(emulator: RunningEmulator) -> None:
    everything = _query(emulator, CLUSTERS, [SUB1, SUB2])
    assert (everything.total_records, everything.count, everything.result_truncated) == (
        19,
        19,
        "false",
    )
    assert everything.skip_token is None
    ids = [r["id"] for r in everything.data]
    assert ids == sorted(ids)
    first = everything.data[0]
    assert list(first) == [
        "id",
        "name",
        "type",
        "location",
        "tags",
        "properties",
        "subscriptionId",
        "resourceGroup",
    ]
    assert first["type"] in (
        "microsoft.containerservice/managedclusters",
        "microsoft.kubernetes/connectedclusters",
    )
    assert first["resourceGroup"] == first["resourceGroup"].lower()
    assert _query(emulator, CLUSTERS, [SUB2]).total_records == 3
    assert _query(emulator, CLUSTERS).total_records == 19  # no scope: every subscription
    offline = _query(
        emulator,
        "resources | where type =~ 'Microsoft.Kubernetes/connectedClusters' "
        "| where properties.connectivityStatus in~ ('offline', 'expired') | project name",
        [SUB1],
    )
    assert sorted(r["name"] for r in offline.data) == ["arc-edge-00002", "arc-edge-00003"]
    in_group = _query(
        emulator, "resources | where resourceGroup =~ 'RG-EDGE-WEU-1' | project id", [SUB1]
    )
    assert in_group.total_records == 4


def test_paging_with_skip_token(emulator: RunningEmulator) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = _query(emulator, CLUSTERS, [SUB1, SUB2], top=5, skip_token=token)
        pages += 1
        assert page.total_records == 19 and page.count == len(page.data) <= 5
        seen += [r["id"] for r in page.data]
        token = page.skip_token
        if token is None:
            break
    assert pages == 4
    assert seen == [r["id"] for r in _query(emulator, CLUSTERS, [SUB1, SUB2]).data]
    skipped = _query(emulator, CLUSTERS, [SUB1, SUB2], skip=17)
    assert skipped.count == 2
    # Without an id column ARG cannot page: the result is truncated instead.
    names = _query(emulator, "resources | project name", [SUB1], top=3)
    assert (names.count, names.result_truncated, names.skip_token) == (3, "true", None)
    # A token is bound to its query and scope.
    token = _query(emulator, CLUSTERS, [SUB1], top=5).skip_token
    with pytest.raises(HttpResponseError) as wrong:
        _query(emulator, CLUSTERS, [SUB2], top=5, skip_token=token)
    assert wrong.value.status_code == 400


def test_table_format(emulator: RunningEmulator) -> None:
    table = _query(
        emulator,
        "resources | where name == 'vnet-1' | project id, name, tags",
        [SUB1],
        result_format="table",
    )
    assert table.data["columns"] == [
        {"name": "id", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "tags", "type": "object"},
    ]
    assert table.data["rows"][0][1:] == ["vnet-1", {}]


def test_kubernetes_configuration_resources(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    kc.flux_configurations.begin_create_or_update(
        RG_PROD,
        AKS,
        "managedClusters",
        "aks-prod-00002",
        "apps",
        kc_models.FluxConfiguration(
            namespace="apps", git_repository=kc_models.GitRepositoryDefinition(url=GIT_URL)
        ),
        polling_interval=0,
    ).result()
    rows = _query(
        emulator,
        "kubernetesconfigurationresources "
        "| where type =~ 'Microsoft.KubernetesConfiguration/extensions' "
        "| where properties.extensionType == 'microsoft.flux' "
        "| project id, type, properties | order by id asc",
        [SUB1],
    ).data
    assert [r["id"].split("/")[8] for r in rows] == ["aks-prod-00001", "aks-prod-00002"]
    assert {r["type"] for r in rows} == {"microsoft.kubernetesconfiguration/extensions"}
    assert rows[1]["properties"]["currentVersion"] == "1.17.3"  # live state, not the snapshot's
    flux = _query(
        emulator,
        "kubernetesconfigurationresources "
        "| where type == 'microsoft.kubernetesconfiguration/fluxconfigurations' "
        f"| where properties.gitRepository.url == '{GIT_URL}' | project name",
    )
    assert sorted(r["name"] for r in flux.data) == ["apps", "cluster-config"]
    v1 = _query(
        emulator,
        "kubernetesconfigurationresources | where type endswith '/sourcecontrolconfigurations'",
    )
    assert v1.total_records == 1
    groups = _query(
        emulator,
        "resourcecontainers | where type == 'microsoft.resources/subscriptions/resourcegroups'",
    )
    assert groups.total_records == 3


@pytest.mark.parametrize(
    "body_query",
    [
        "resources | summarize count()",
        "resources | where Name == 'x'",
        "resources | project-away id",
    ],
)
def test_invalid_queries_are_400_invalid_query(emulator: RunningEmulator, body_query: str) -> None:
    with pytest.raises(HttpResponseError) as caught:
        _query(emulator, body_query, [SUB1])
    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "InvalidQuery"
    assert "Query is invalid" in caught.value.error.message


def test_request_validation() -> None:
    with pytest.raises(kql.GraphQueryError, match="management-group"):
        graph.parse_request({"query": "resources", "managementGroups": ["mg"]})
    with pytest.raises(kql.GraphQueryError, match=r"\$top"):
        graph.parse_request({"query": "resources", "options": {"$top": 5000}})
    with pytest.raises(kql.GraphQueryError, match="resultFormat"):
        graph.parse_request({"query": "resources", "options": {"resultFormat": "csv"}})
    with pytest.raises(kql.GraphQueryError, match="facets"):
        graph.parse_request({"query": "resources", "facets": [{"expression": "type"}]})

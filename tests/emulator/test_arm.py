"""Subscriptions, resource groups, resource listing with filters, clusters by id, paging."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient

from fleet.emulator.testing import RunningEmulator

from .conftest import (
    AKS,
    CATALOG,
    RG_EDGE,
    RG_PROD,
    SUB1,
    SUB2,
    EmulatorFactory,
    FakeCredential,
    aks,
    client_kwargs,
    cluster_id,
    rg_id,
    rm_client,
    sub_client,
)

MANAGED = "Microsoft.ContainerService/managedClusters"
CONNECTED = "Microsoft.Kubernetes/connectedClusters"


def test_subscriptions(emulator: RunningEmulator) -> None:
    client = sub_client(emulator)
    subs = list(client.subscriptions.list())
    assert [(s.subscription_id, s.display_name, s.state) for s in subs] == [
        (SUB1, "prod-eu", "Enabled"),
        (SUB2, "staging", "Enabled"),
    ]
    assert subs[0].id == f"/subscriptions/{SUB1}" and subs[0].tenant_id
    assert client.subscriptions.get(SUB2).display_name == "staging"
    with pytest.raises(ResourceNotFoundError) as missing:
        client.subscriptions.get("00000000-0000-0000-0000-00000000dead")
    assert missing.value.error is not None and missing.value.error.code == "SubscriptionNotFound"
    assert [t.tenant_id for t in client.tenants.list()] == [subs[0].tenant_id]


def test_resource_groups(emulator: RunningEmulator) -> None:
    rm = rm_client(emulator)
    groups = list(rm.resource_groups.list())
    assert [g.name for g in groups] == [RG_PROD, RG_EDGE]
    assert groups[0].properties.provisioning_state == "Succeeded"
    assert groups[0].tags == {"env": "prod"}
    assert rm.resource_groups.get(RG_EDGE).location == "westeurope"
    with pytest.raises(ResourceNotFoundError) as missing:
        rm.resource_groups.get("rg-nope")
    assert missing.value.error is not None and missing.value.error.code == "ResourceGroupNotFound"
    assert [g.name for g in rm_client(emulator, sub=SUB2).resource_groups.list()] == [
        "rg-stg-weu-1"
    ]


def test_resources_list_with_filters_across_pages(emulator: RunningEmulator) -> None:
    rm = rm_client(emulator)
    managed = list(rm.resources.list(filter=f"resourceType eq '{MANAGED}'"))
    # 12 AKS clusters in SUB1: more than two pages of five.
    assert len(managed) == 12
    assert {r.type for r in managed} == {MANAGED}
    assert all(r.properties is None for r in managed)  # like ARM: no properties in lists
    assert managed[0].tags == {"env": "prod"} and managed[0].location == "westeurope"
    both = list(
        rm.resources.list(filter=f"resourceType eq '{MANAGED}' or resourceType eq '{CONNECTED}'")
    )
    assert len(both) == 16
    lower = list(rm.resources.list(filter=f"resourceType eq '{CONNECTED.lower()}'"))
    assert len(lower) == 4
    edge = list(rm.resources.list(filter=f"resourceGroup eq '{RG_EDGE}'"))
    assert {r.name for r in edge} == {
        "arc-edge-00001",
        "arc-edge-00002",
        "arc-edge-00003",
        "arc-v1-00004",
    }
    combined = list(
        rm.resources.list(
            filter=f"resourceGroup eq '{RG_PROD}' and (resourceType eq '{MANAGED}' or "
            "resourceType eq 'Microsoft.Network/virtualNetworks')"
        )
    )
    assert len(combined) == 13
    everything = list(rm.resources.list())
    assert len(everything) == 17  # no resource groups, no extension resources
    assert len(list(rm.resources.list(top=3))) == 3
    in_group = list(
        rm.resources.list_by_resource_group(RG_PROD, filter=f"resourceType eq '{MANAGED}'")
    )
    assert len(in_group) == 12


def test_next_link_is_absolute_and_keeps_the_filter(emulator: RunningEmulator) -> None:
    rm = rm_client(emulator)
    pages = rm.resources.list(filter=f"resourceType eq '{MANAGED}'").by_page()
    first = list(next(pages))
    assert len(first) == 5
    link = pages.continuation_token
    assert link.startswith(f"{emulator.endpoint}/subscriptions/{SUB1}/resources?")
    assert "%24filter=" in link or "$filter=" in link
    assert "skiptoken" in link
    assert sum(len(list(p)) for p in pages) == 7
    by_type = emulator.admin.stats()["requests"]["byResourceType"]
    assert by_type["Microsoft.Resources/subscriptions/resources"] == 3


@pytest.mark.parametrize(
    "bad",
    [
        "substringof('aks', name)",
        "resourceType ne 'x'",
        "tagName eq 'env'",
        "resourceType eq 'x' and",
        "resourceType eq x",
    ],
)
def test_filters_the_emulator_does_not_understand_are_400(
    emulator: RunningEmulator, bad: str
) -> None:
    rm = rm_client(emulator)
    with pytest.raises(HttpResponseError) as caught:
        list(rm.resources.list(filter=bad))
    assert caught.value.status_code == 400
    assert (
        caught.value.error is not None and caught.value.error.code == "InvalidFilterInQueryString"
    )


def test_clusters_by_id_and_by_typed_path(emulator: RunningEmulator) -> None:
    rm = rm_client(emulator)
    by_id = rm.resources.get_by_id(cluster_id("aks-prod-00001"), api_version="2024-05-01")
    assert by_id.id == cluster_id("aks-prod-00001")
    assert by_id.properties["powerState"] == {"code": "Running"}
    typed = rm.resources.get(
        RG_PROD, AKS, "", "managedClusters", "aks-stop-00004", api_version="2024-05-01"
    )
    assert typed.properties["powerState"]["code"] == "Stopped"
    arc = rm.resources.get_by_id(
        cluster_id("arc-edge-00002", rg=RG_EDGE, arc=True), api_version="2024-01-01"
    )
    assert arc.properties["connectivityStatus"] == "Offline"
    vnet = rm.resources.get_by_id(
        f"/subscriptions/{SUB1}/resourceGroups/{RG_PROD}/providers/Microsoft.Network/virtualNetworks/vnet-1",
        api_version="2024-01-01",
    )
    assert vnet.type == "Microsoft.Network/virtualNetworks"
    with pytest.raises(ResourceNotFoundError) as missing:
        rm.resources.get_by_id(cluster_id("aks-nope"), api_version="2024-05-01")
    assert missing.value.error is not None and missing.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as no_group:
        rm.resources.get_by_id(cluster_id("aks-1", rg="rg-nope"), api_version="2024-05-01")
    assert no_group.value.error is not None and no_group.value.error.code == "ResourceGroupNotFound"


def test_existence_checks_use_head(emulator: RunningEmulator) -> None:
    rm = rm_client(emulator)
    assert rm.resource_groups.check_existence(RG_PROD) is True
    assert rm.resource_groups.check_existence("rg-nope") is False
    version = "2024-05-01"
    assert rm.resources.check_existence_by_id(cluster_id("aks-prod-00001"), api_version=version)
    assert not rm.resources.check_existence_by_id(cluster_id("aks-nope"), api_version=version)


def test_lists_page_as_azure_does_unless_told_otherwise(start_emulator: EmulatorFactory) -> None:
    """page_size None: each list at Azure's page size (docs/emulator.md, Paging), e.g. 50
    subscriptions, 100 clusters of a provider's list-by-subscription."""
    subs = [f"00000000-0000-4000-8000-{i:012d}" for i in range(55)]
    snapshot = {
        "kind": "FleetSnapshot",
        "subscriptions": [
            {"subscriptionId": s, "displayName": f"s{i}"} for i, s in enumerate(subs)
        ],
        "extensionTypeVersions": CATALOG,
        "resources": [
            {
                "id": rg_id(SUB1, RG_PROD),
                "type": "Microsoft.Resources/resourceGroups",
                "name": RG_PROD,
                "location": "westeurope",
            },
            *(aks(f"aks-{i:03d}", sub=SUB1) for i in range(130)),
        ],
    }
    snapshot["subscriptions"].append({"subscriptionId": SUB1, "displayName": "prod-eu"})
    with start_emulator(snapshot, page_size=None) as emu:
        pages = sub_client(emu).subscriptions.list().by_page()
        assert [len(list(p)) for p in pages] == [50, 6]
        rm = rm_client(emu)
        clusters = rm.resources.list(filter=f"resourceType eq '{MANAGED}'").by_page()
        assert [len(list(p)) for p in clusters] == [100, 30]
        cs = ContainerServiceClient(FakeCredential(), SUB1, **client_kwargs(emu))
        assert [len(list(p)) for p in cs.managed_clusters.list().by_page()] == [100, 30]
    with start_emulator(snapshot, page_size=40) as emu:
        cs = ContainerServiceClient(FakeCredential(), SUB1, **client_kwargs(emu))
        assert [len(list(p)) for p in cs.managed_clusters.list().by_page()] == [40, 40, 40, 10]

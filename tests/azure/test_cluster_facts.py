"""Cluster facts in bulk: the providers' list-by-subscription carry the properties, so a
cluster is judged on three reads (its three child lists), and read a fourth time only when its
listed facts are missing or older than ``FLEET_FACTS_MAX_AGE``.

Counted at the emulator (every GET it answered), through the real SDK over HTTPS.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleet.azure.inventory import ArmInventory, Subscription
from fleet.azure.observe import needs_cluster_read, observe
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.emulator.conftest import CATALOG, FAST, SUB1, aks, arc, rg_id
from tests.graph.conftest import settings_for

RG_PROD, RG_EDGE = "rg-prod-weu-1", "rg-edge-weu-1"
#: Enough clusters of each type to cross pages of 4 in both provider lists.
AKS = [aks(f"aks-{i:02d}", rg=RG_PROD, power="Stopped" if i == 3 else "Running") for i in range(9)]
ARC = [
    arc(f"arc-{i:02d}", rg=RG_EDGE, status="Offline" if i == 1 else "Connected") for i in range(6)
]


def _snapshot(clusters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "FleetSnapshot",
        "subscriptions": [{"subscriptionId": SUB1, "displayName": "one"}],
        "extensionTypeVersions": CATALOG,
        "resources": [
            *(
                {
                    "id": rg_id(SUB1, rg),
                    "type": "Microsoft.Resources/resourceGroups",
                    "name": rg,
                    "location": "westeurope",
                }
                for rg in (RG_PROD, RG_EDGE)
            ),
            *copy.deepcopy(clusters),
        ],
    }


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(_snapshot(AKS + ARC), **FAST, throttle="off", page_size=4) as emu:
        yield emu


def _gets(emu: RunningEmulator) -> int:
    return int(emu.admin.stats()["requests"]["byMethod"].get("GET", 0))


def test_the_provider_lists_give_every_cluster_with_its_properties(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    emu.admin.reset_stats()
    before = datetime.now(UTC)
    with AzureSession(settings_for(emu, tmp_path)) as session:
        listed = list(ArmInventory(session).clusters([Subscription(SUB1, "one")]))
    # 9 AKS in 3 pages of 4, 6 Arc in 2: the pages and nothing else.
    assert _gets(emu) == 5
    assert sorted(f.id for f in listed) == sorted(c["id"] for c in AKS + ARC)
    for facts in listed:
        assert facts.listed_at is not None and facts.listed_at >= before - timedelta(seconds=1)
    by_id = {f.id: f for f in listed}
    for cluster in AKS + ARC:
        # the same facts a GET of the cluster gives (what selection and evaluation read)
        assert by_id[cluster["id"]].model_copy(update={"listed_at": None}) == facts_from_arm(
            cluster
        )
    assert by_id[AKS[3]["id"]].power_state == "Stopped"
    assert by_id[ARC[1]["id"]].connectivity_status == "Offline"


def test_a_listed_cluster_is_judged_on_three_reads(emu: RunningEmulator, tmp_path: Path) -> None:
    with AzureSession(settings_for(emu, tmp_path)) as session:
        facts = next(iter(ArmInventory(session).clusters([Subscription(SUB1, "one")])))
        emu.admin.reset_stats()
        observed = observe(session, facts)
    assert _gets(emu) == 3
    assert observed.read_error is None
    assert observed.facts == facts
    assert observed.resource is None  # the cluster itself was not read


def test_facts_older_than_the_limit_are_read_again(emu: RunningEmulator, tmp_path: Path) -> None:
    with AzureSession(settings_for(emu, tmp_path, facts_max_age=60)) as session:
        facts = next(iter(ArmInventory(session).clusters([Subscription(SUB1, "one")])))
        stale = facts.model_copy(
            update={"listed_at": datetime.now(UTC) - timedelta(seconds=61), "power_state": None}
        )
        emu.admin.reset_stats()
        observed = observe(session, stale)
    assert _gets(emu) == 4
    # the facts judged are the fresh read's, not the stale listing's
    assert observed.facts.power_state == "Running"
    assert observed.resource is not None and observed.resource["id"] == facts.id


@pytest.mark.parametrize("how", ["of_id", "max_age_0", "asked"])
def test_a_cluster_without_usable_listed_facts_is_read(
    emu: RunningEmulator, tmp_path: Path, how: str
) -> None:
    settings = settings_for(emu, tmp_path, facts_max_age=0 if how == "max_age_0" else 900)
    with AzureSession(settings) as session:
        listed = next(iter(ArmInventory(session).clusters([Subscription(SUB1, "one")])))
        facts = ClusterFacts.of_id(AKS[0]["id"]) if how == "of_id" else listed
        emu.admin.reset_stats()
        observed = observe(session, facts, read_cluster=how == "asked")
    assert _gets(emu) == 4
    assert observed.facts.power_state == "Running"
    assert observed.facts.kubernetes_version == "1.30.4"
    assert observed.resource is not None


def test_a_listed_item_without_properties_is_not_stamped(tmp_path: Path) -> None:
    bare = {k: v for k, v in aks("aks-bare").items() if k != "properties"}
    with (
        running_emulator(_snapshot([bare, AKS[0]]), **FAST, throttle="off") as emu,
        AzureSession(settings_for(emu, tmp_path)) as session,
    ):
        listed = {f.name: f for f in ArmInventory(session).clusters([Subscription(SUB1, "one")])}
        assert listed["aks-bare"].listed_at is None
        assert listed[AKS[0]["name"]].listed_at is not None
        emu.admin.reset_stats()
        observe(session, listed["aks-bare"])
        assert _gets(emu) == 4


def test_the_age_rule() -> None:
    now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    facts = ClusterFacts.of_id(AKS[0]["id"])
    assert needs_cluster_read(facts, 900, now)  # never listed with properties
    at = facts.model_copy(update={"listed_at": now - timedelta(seconds=900)})
    assert not needs_cluster_read(at, 900, now)
    assert needs_cluster_read(at, 899.9, now)
    # stamped in the future (a clock that jumped back): not trusted
    ahead = facts.model_copy(update={"listed_at": now + timedelta(seconds=5)})
    assert needs_cluster_read(ahead, 900, now)

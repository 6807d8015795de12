"""The SDK side of new shapes: reads keep ARM's JSON, writes send fleet's, whatever Azure adds.

Bodies carry enum values no api-version defines and properties at every level that no model
has; the observer (ARM lists and Resource Graph) must hand them over exactly as the emulator
stores them, without a read error, and a write of a 2025-04-01 body (an OCI source) must reach
ARM whole. Also here: the version catalogue of 2026-05-01 and what happens when it cannot be
read, and a provider's registration state per subscription.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.azure import apply
from fleet.azure.catalogs import CatalogCache
from fleet.azure.graph import GraphInventory
from fleet.azure.inventory import ArmInventory, Subscription, registration_states
from fleet.azure.observe import observe
from fleet.azure.session import AzureSession
from fleet.core.clusters import facts_from_arm
from fleet.core.errors import CatalogUnavailable
from fleet.emulator.testing import RunningEmulator, running_emulator
from fleet.plan.actions import Action, ActionKind
from tests.emulator.conftest import (
    CATALOG,
    FAST,
    SUB1,
    SUB2,
    aks,
    flux_config,
    flux_extension,
    rg_id,
)
from tests.graph.conftest import settings_for

RG = "rg-prod-weu-1"


def _odd(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` with unknown enum values and extra members at every level."""
    odd = copy.deepcopy(resource)
    odd["futureTopLevel"] = {"nested": [1, {"deeper": True}]}
    props = odd["properties"]
    props["provisioningState"] = "Reticulating"
    props["brandNewProperty"] = {"a": [None, "b"]}
    if "sourceKind" in props:
        props["sourceKind"] = "QuantumRepository"
        props["complianceState"] = "Partially-Compliant"
        props["gitRepository"]["futureAuth"] = {"kind": "Passkey"}
        props["kustomizations"]["infra"]["futureKnob"] = 7
        props["statuses"] = [{"kind": "HelmRelease", "futureField": {"x": 1}, "name": "a"}]
        props["ociRepository"] = {"url": "oci://example.azurecr.io/app", "layerSelector": {}}
    else:
        props["autoUpgradeMode"] = "yolo"
        props["statuses"] = [{"code": "X", "level": "Catastrophic", "extra": [1]}]
    return odd


def _snapshot(resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    cluster = aks("aks-odd-00001")
    return {
        "kind": "FleetSnapshot",
        "subscriptions": [
            {"subscriptionId": SUB1, "displayName": "one"},
            {
                "subscriptionId": SUB2,
                "displayName": "two",
                "providers": {"Microsoft.KubernetesConfiguration": "NotRegistered"},
            },
        ],
        "extensionTypeVersions": CATALOG,
        "resources": [
            {
                "id": rg_id(SUB1, RG),
                "type": "Microsoft.Resources/resourceGroups",
                "name": RG,
                "location": "westeurope",
                "tags": {},
            },
            cluster,
            *resources,
        ],
        **extra,
    }


CLUSTER = aks("aks-odd-00001")
ODD_EXTENSION = _odd(flux_extension(CLUSTER["id"]))
ODD_FLUX = _odd(flux_config(CLUSTER["id"]))


@pytest.fixture
def odd(tmp_path: Path) -> Iterator[tuple[RunningEmulator, AzureSession]]:
    doc = _snapshot([ODD_EXTENSION, ODD_FLUX])
    with (
        running_emulator(doc, **FAST) as emu,
        AzureSession(settings_for(emu, tmp_path)) as session,
    ):
        yield emu, session


def _put_flux_config(name: str, body: dict[str, Any]) -> Action:
    """The action that PUTs ``body`` as flux configuration ``name`` of ``CLUSTER``."""
    rid = f"{CLUSTER['id']}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/{name}"
    return Action(
        kind=ActionKind.PUT_FLUX_CONFIG,
        cluster_id=CLUSTER["id"],
        resource_id=rid,
        method="PUT",
        body=body,
    )


def test_arm_reads_keep_what_no_api_version_defines(
    odd: tuple[RunningEmulator, AzureSession],
) -> None:
    _, session = odd
    observed = observe(session, facts_from_arm(CLUSTER))
    assert observed.read_error is None
    assert observed.extensions == (ODD_EXTENSION,)
    assert observed.flux_configurations == (ODD_FLUX,)


def test_graph_reads_keep_what_no_api_version_defines(
    odd: tuple[RunningEmulator, AzureSession],
) -> None:
    _, session = odd
    found = list(GraphInventory(session).observations([Subscription(SUB1, "one")]))
    assert len(found) == 1
    observed = found[0].observed
    if observed is None:  # the unknown provisioningState reads as "in progress": ARM is asked
        observed = observe(session, found[0].facts)
    assert observed.read_error is None
    (flux,) = observed.flux_configurations
    assert flux["properties"]["sourceKind"] == "QuantumRepository"
    assert flux["properties"]["ociRepository"] == ODD_FLUX["properties"]["ociRepository"]
    assert flux["properties"]["brandNewProperty"] == {"a": [None, "b"]}


def test_a_2025_body_reaches_arm_whole(tmp_path: Path) -> None:
    body = {
        "properties": {
            "scope": "cluster",
            "namespace": "apps",
            "sourceKind": "OCIRepository",
            "ociRepository": {
                "url": "oci://example.azurecr.io/manifests/app",
                "repositoryRef": {"semver": ">=1.0.0"},
                "layerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip"},
                "useWorkloadIdentity": True,
                "insecure": False,
            },
            "kustomizations": {"app": {"path": "./", "prune": True}},
        }
    }
    action = _put_flux_config("oci", body)
    rid = action.resource_id
    with (
        running_emulator(_snapshot([flux_extension(CLUSTER["id"])]), **FAST) as emu,
        AzureSession(settings_for(emu, tmp_path)) as session,
    ):
        outcome = apply.apply(session, action, timeout=30)
        assert outcome.succeeded, outcome.error
        assert outcome.provisioning_state == "Succeeded"
        stored = next(r for r in emu.admin.snapshot()["resources"] if r["id"] == rid)
    oci = stored["properties"]["ociRepository"]
    assert oci["repositoryRef"] == {"semver": ">=1.0.0"}
    assert oci["useWorkloadIdentity"] is True
    assert oci["layerSelector"]["mediaType"].startswith("application/vnd.cncf.flux")


def test_the_catalogue_is_read_per_train_in_2026_05_01(
    odd: tuple[RunningEmulator, AzureSession],
) -> None:
    emu, session = odd
    trains = ArmInventory(session).catalog(SUB1, "westeurope")
    assert trains == {
        "Stable": CATALOG["microsoft.flux"]["Stable"],
        "Preview": ["1.18.0-preview.1", "1.17.3"],
    }
    paths = {r["path"] for r in emu.admin.requests() if "extensionTypes" in r["path"]}
    assert all("/locations/westeurope/extensionTypes/microsoft.flux/versions" in p for p in paths)


def test_an_unreadable_catalogue_makes_its_clusters_read_errors(tmp_path: Path) -> None:
    doc = _snapshot([flux_extension(CLUSTER["id"])], extensionTypeVersions={})
    with (
        running_emulator(doc, **FAST) as emu,
        AzureSession(settings_for(emu, tmp_path, read_attempts=1)) as session,
    ):
        inventory = ArmInventory(session)
        with pytest.raises(CatalogUnavailable, match="westeurope could not be read"):
            inventory.catalog(SUB1, "westeurope")
        cache = CatalogCache(inventory)
        observed, catalog = cache.for_cluster(observe(session, facts_from_arm(CLUSTER)))
        assert observed.read_error is not None
        assert "microsoft.flux version catalogue of westeurope" in observed.read_error
        assert catalog.releases == {}
        before = len(emu.admin.requests())
        cache.for_cluster(observe(session, facts_from_arm(CLUSTER)))  # remembered: not re-read
        catalogue_reads = [
            r for r in emu.admin.requests()[before:] if "extensionTypes" in r["path"]
        ]
        assert catalogue_reads == []


def test_registration_state_per_subscription(odd: tuple[RunningEmulator, AzureSession]) -> None:
    _, session = odd
    assert registration_states(session, [SUB1, SUB2]) == {
        SUB1: "Registered",
        SUB2: "NotRegistered",
    }


@pytest.mark.parametrize("polls", [0, 1, 3])
def test_a_write_resumed_from_its_token_ends_with_the_resource(tmp_path: Path, polls: int) -> None:
    """What the Celery poll tasks and ``fleet remediate --resume`` do: rebuild the poller from
    the stored continuation token in another call and poll it to the end. azure-core may hand
    the final step a stand-in of the stored response (no ``json()``); the write still ends
    ``Succeeded`` with the resource's provisioning state, whether the operation was already
    over when it was resumed or not."""
    body = {
        "properties": {
            "scope": "cluster",
            "namespace": "apps",
            "sourceKind": "GitRepository",
            "gitRepository": {"url": "https://github.com/x/y", "repositoryRef": {"branch": "main"}},
            "kustomizations": {"app": {"path": "./", "prune": True}},
        }
    }
    action = _put_flux_config("app", body)
    options = {**FAST, "lro_polls": polls}
    with (
        running_emulator(_snapshot([flux_extension(CLUSTER["id"])]), **options) as emu,
        AzureSession(settings_for(emu, tmp_path)) as session,
    ):
        for attempt in ("create", "again, unchanged"):  # ARM may answer the second at once
            started = apply.start(session, action)
            assert started.failed is None and started.continuation_token, attempt
            for _ in range(polls + 1):  # let the operation end before it is resumed
                token = started.continuation_token
                apply.finish(apply.resume(session, action, token), timeout=0.01)
            resumed = apply.resume(session, action, started.continuation_token)
            done = apply.finish(resumed, timeout=30)
            assert done.succeeded, (attempt, done.error)
            assert done.provisioning_state in ("Succeeded", None), attempt


def test_a_response_rebuilt_from_a_token_reads_as_json() -> None:
    """The SDKs call ``json()`` on an LRO's final response, which for a poller resumed from a
    continuation token can be azure-core's stand-in of the stored response (no ``json()`` of
    its own): fleet gives it one, so a resumed write that ARM finished is not a failure."""
    from azure.core.polling import base_polling

    stored = base_polling._ContinuationTokenHttpResponse(
        None, 201, {"content-type": "application/json"}, b'{"properties": {"x": 1}}'
    )
    assert apply is not None  # importing fleet.azure.apply adds json() where it is missing
    assert stored.json() == {"properties": {"x": 1}}
    empty = base_polling._ContinuationTokenHttpResponse(None, 204, {}, b"")
    assert empty.json() is None

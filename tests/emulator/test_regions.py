"""A release published to one region before another (``regions.py``), through the real SDK.

The fleet of ``tests.promotion_fleet`` (clusters in westeurope and eastus, flux 1.17.2). The
admin route publishes 1.17.3 to westeurope now and to eastus at a later moment of the emulated
clock: each location's catalogue, the installs and the auto-upgrades follow, and a snapshot
carries the regions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from fleet.emulator.snapshot import validate
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests import promotion_fleet as pf

from .conftest import kc_client

RG = "rg-promote"
MC = ("Microsoft.ContainerService", "managedClusters")
PIN_NEW = models.Extension(
    extension_type="microsoft.flux", auto_upgrade_minor_version=False, version=pf.NEW
)


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(pf.snapshot(), retry_after=0, lro_polls=1, throttle="off") as running:
        running.admin.set_clock(pf.T0)
        yield running


def _stable(emu: RunningEmulator, location: str) -> list[str]:
    kc = kc_client(emu, sub=pf.SUB)
    trains = {
        v.release_train: v.versions
        for v in kc.extension_type_versions.list(location, "microsoft.flux")
    }
    return list(trains["Stable"])


def test_a_release_reaches_each_region_at_its_own_moment(emu: RunningEmulator) -> None:
    result = emu.admin.publish_release(pf.NEW, ["westeurope"])
    emu.admin.publish_release(pf.NEW, ["eastus"], at="2027-01-06T10:00:00Z")
    # Auto-upgrading extensions in westeurope moved; eastus does not serve it yet.
    assert sorted(i.split("/")[8] for i in result["upgraded"]) == [
        "aks-we-0",
        "aks-we-1",
        "aks-we-2",
    ]
    assert _stable(emu, "westeurope")[0] == pf.NEW
    assert pf.NEW not in _stable(emu, "eastus")

    kc = kc_client(emu, sub=pf.SUB)
    with pytest.raises(HttpResponseError):  # a pin eastus cannot install yet
        kc.extensions.begin_create(
            RG, *MC, "aks-us-0", "flux", PIN_NEW, polling_interval=0
        ).result()
    assert "not available" in kc.extensions.get(RG, *MC, "aks-us-0", "flux").error_info.message

    emu.admin.set_clock("2027-01-06T10:00:01Z")
    assert _stable(emu, "eastus")[0] == pf.NEW
    got = kc.extensions.begin_create(
        RG, *MC, "aks-us-1", "flux", PIN_NEW, polling_interval=0
    ).result()
    assert got.current_version == pf.NEW

    snap = emu.admin.snapshot()
    assert not validate(snap)
    regions = snap["extensionTypeRegions"]["microsoft.flux"][pf.NEW]
    assert regions == {"westeurope": regions["westeurope"], "eastus": "2027-01-06T10:00:00Z"}
    assert snap["extensionTypeVersions"]["microsoft.flux"]["Stable"][0] == pf.NEW


def test_a_snapshot_with_a_malformed_regions_section_is_refused() -> None:
    snap = copy.deepcopy(pf.snapshot())
    snap["extensionTypeRegions"] = {"microsoft.flux": {pf.NEW: {"westeurope": "soon"}}}
    issues = validate(snap)
    assert any("extensionTypeRegions" in i and "'soon' is not an ISO time" in i for i in issues)


def test_publishing_needs_a_version_and_locations(emu: RunningEmulator) -> None:
    with pytest.raises(Exception, match="locations"):
        emu.admin.call("POST", "catalog/publish", {"version": pf.NEW, "locations": []})

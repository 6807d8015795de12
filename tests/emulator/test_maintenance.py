"""AKS maintenance configurations served as ARM serves them, through the real
``azure-mgmt-containerservice`` client: create, read, list, delete, the refusals, and the
snapshot that carries them (export and replay)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient

from fleet.azure import api_versions
from fleet.emulator.snapshot import load
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.emulator.conftest import RG_PROD, SUB1, FakeCredential, client_kwargs

NAME = "aks-prod-00001"
WEEKLY = {
    "maintenanceWindow": {
        "schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Saturday"}},
        "durationHours": 4,
        "startTime": "02:00",
        "utcOffset": "+01:00",
        "notAllowedDates": [{"start": "2026-12-24", "end": "2026-12-26"}],
    }
}


def aks_client(emu: RunningEmulator) -> ContainerServiceClient:
    # fleet's api-version (the SDK's default moves with each release).
    return ContainerServiceClient(
        FakeCredential(),
        SUB1,
        api_version=api_versions.MAINTENANCE_CONFIGURATIONS,
        **client_kwargs(emu),
    )


def test_configurations_round_trip_through_the_sdk(emulator: RunningEmulator) -> None:
    ops = aks_client(emulator).maintenance_configurations
    made = ops.create_or_update(
        RG_PROD, NAME, "aksManagedAutoUpgradeSchedule", {"properties": WEEKLY}
    )
    assert made.name == "aksManagedAutoUpgradeSchedule"
    assert made.type == "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"
    assert made.id.endswith(f"/managedClusters/{NAME}/maintenanceConfigurations/{made.name}")
    ops.create_or_update(
        RG_PROD,
        NAME,
        "default",
        {"properties": {"timeInWeek": [{"day": "Monday", "hourSlots": [1]}]}},
    )
    listed = {c.name: c.as_dict() for c in ops.list_by_managed_cluster(RG_PROD, NAME)}
    assert set(listed) == {"aksManagedAutoUpgradeSchedule", "default"}
    assert listed["aksManagedAutoUpgradeSchedule"]["properties"] == WEEKLY
    got = ops.get(RG_PROD, NAME, "default").as_dict()
    assert got["properties"]["timeInWeek"] == [{"day": "Monday", "hourSlots": [1]}]
    ops.delete(RG_PROD, NAME, "default")
    with pytest.raises(ResourceNotFoundError):
        ops.get(RG_PROD, NAME, "default")
    ops.delete(RG_PROD, NAME, "default")  # 204: already gone, no error


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"maintenanceWindow": {**WEEKLY["maintenanceWindow"], "durationHours": 2}},
            "durationHours",
        ),
        (
            {"maintenanceWindow": {**WEEKLY["maintenanceWindow"], "schedule": {}}},
            "One and only one of the schedule types",
        ),
    ],
)
def test_what_aks_refuses_is_refused(
    emulator: RunningEmulator, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        aks_client(emulator).maintenance_configurations.create_or_update(
            RG_PROD, NAME, "aksManagedAutoUpgradeSchedule", {"properties": props}
        )
    assert refused.value.status_code == 400 and message in str(refused.value)


def test_a_snapshot_carries_them_and_a_missing_cluster_is_named(
    emulator: RunningEmulator, fleet: dict[str, Any]
) -> None:
    aks_client(emulator).maintenance_configurations.create_or_update(
        RG_PROD, NAME, "aksManagedAutoUpgradeSchedule", {"properties": WEEKLY}
    )
    exported = emulator.admin.snapshot()
    with running_emulator(load(exported)) as replayed:
        again = aks_client(replayed).maintenance_configurations.get(
            RG_PROD, NAME, "aksManagedAutoUpgradeSchedule"
        )
        assert again.as_dict()["properties"] == WEEKLY
    with pytest.raises(ResourceNotFoundError):
        list(
            aks_client(emulator).maintenance_configurations.list_by_managed_cluster(RG_PROD, "nope")
        )

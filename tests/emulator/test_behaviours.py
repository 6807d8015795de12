"""Behaviours that mirror Azure: auto-installed extension, Flux v1, ARM64, stopped AKS, Arc
clusters that are not connected (48 h of emulated time), compliance, versions, auto-upgrade."""

from __future__ import annotations

import copy

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from fleet.emulator.testing import RunningEmulator

from .conftest import (
    AKS,
    ARC,
    CATALOG,
    GIT_URL,
    RG_EDGE,
    RG_PROD,
    EmulatorFactory,
    FakeCredential,
    arc,
    jwt,
    kc_client,
)

MC = "managedClusters"
CC = "connectedClusters"
FLUX = models.Extension(extension_type="microsoft.flux")


def _config(url: str = GIT_URL, **kwargs: object) -> models.FluxConfiguration:
    return models.FluxConfiguration(
        namespace="cluster-config",
        git_repository=models.GitRepositoryDefinition(
            url=url, repository_ref=models.RepositoryRefDefinition(branch="main")
        ),
        kustomizations={"infra": models.KustomizationDefinition(path="./infrastructure")},
        **kwargs,
    )


def test_flux_configuration_installs_the_extension_first(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator, FakeCredential(jwt(oid="0b1d", upn="ops@contoso.com")))
    args = (RG_PROD, AKS, MC, "aks-prod-00002")
    assert list(kc.extensions.list(*args)) == []
    config = kc.flux_configurations.begin_create_or_update(
        *args, "cluster-config", _config(), polling_interval=0
    ).result()
    assert config.provisioning_state == "Succeeded"
    [ext] = kc.extensions.list(*args)
    assert ext.name == "flux" and ext.extension_type == "microsoft.flux"
    assert (ext.auto_upgrade_minor_version, ext.release_train, ext.current_version) == (
        True,
        "Stable",
        "1.17.3",
    )
    assert ext.provisioning_state == "Succeeded"
    assert ext.scope.cluster.release_namespace == "flux-system"
    assert config.system_data.created_by == "ops@contoso.com"
    assert config.system_data.created_by_type == "User"
    # An existing extension (any name) is used as it is.
    kc.flux_configurations.begin_create_or_update(
        *args, "second", _config(), polling_interval=0
    ).result()
    assert len(list(kc.extensions.list(*args))) == 1
    assert (
        emulator.admin.stats()["lros"]["started"] == 3
    )  # flux + auto-installed extension + second


def test_flux_v1_blocks_the_extension_install(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    args = (RG_EDGE, ARC, CC, "arc-v1-00004")
    with pytest.raises(HttpResponseError):
        kc.extensions.begin_create(*args, "flux", FLUX, polling_interval=0).result()
    ext = kc.extensions.get(*args, "flux")
    assert ext.provisioning_state == "Failed"
    assert ext.error_info.code == "ExtensionOperationFailed"
    assert "Flux v1" in ext.error_info.message and "legacy-v1" in ext.error_info.message
    assert ext.statuses[0].level == "Error"
    # A flux configuration that would install the extension fails the same way.
    kc.extensions.begin_delete(*args, "flux", force_delete=True).result()
    with pytest.raises(HttpResponseError):
        kc.flux_configurations.begin_create_or_update(
            *args, "cluster-config", _config(), polling_interval=0
        ).result()
    config = kc.flux_configurations.get(*args, "cluster-config")
    assert config.provisioning_state == "Failed" and "Flux v1" in config.error_message
    assert kc.extensions.get(*args, "flux").provisioning_state == "Failed"
    # Migrate: delete the Flux v1 configuration, then the install goes through.
    kc.source_control_configurations.begin_delete(*args, "legacy-v1", polling_interval=0).result()
    kc.extensions.begin_delete(*args, "flux", force_delete=True).result()
    assert (
        kc.extensions.begin_create(*args, "flux", FLUX, polling_interval=0)
        .result()
        .provisioning_state
        == "Succeeded"
    )


@pytest.mark.parametrize(
    ("cluster", "version", "ok"),
    [
        ("aks-arm-00003", "1.6.3", False),
        ("aks-arm-00003", "1.7.0", True),
        ("aks-prod-00002", "1.6.3", True),
    ],
)
def test_arm64_clusters_need_flux_1_7_0(
    emulator: RunningEmulator, cluster: str, version: str, ok: bool
) -> None:
    kc = kc_client(emulator)
    args = (RG_PROD, AKS, MC, cluster, "flux")
    pinned = models.Extension(
        extension_type="microsoft.flux", auto_upgrade_minor_version=False, version=version
    )
    poller = kc.extensions.begin_create(*args, pinned, polling_interval=0)
    if ok:
        assert poller.result().current_version == version
    else:
        with pytest.raises(HttpResponseError):
            poller.result()
        ext = kc.extensions.get(*args)
        assert ext.provisioning_state == "Failed" and "ARM64" in ext.error_info.message
    # Auto-upgrade gets the newest Stable version, fine on ARM64 as well.
    assert (
        kc.extensions.begin_create(*args, FLUX, polling_interval=0).result().current_version
        == "1.17.3"
    )


def test_versions_come_from_the_catalogue(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    args = (RG_PROD, AKS, MC, "aks-prod-00002", "flux")
    preview = models.Extension(extension_type="microsoft.flux", release_train="Preview")
    assert (
        kc.extensions.begin_create(*args, preview, polling_interval=0).result().current_version
        == "1.18.0-preview.1"
    )
    pinned = models.Extension(
        extension_type="microsoft.flux", auto_upgrade_minor_version=False, version="1.15.2"
    )
    got = kc.extensions.begin_create(*args, pinned, polling_interval=0).result()
    assert (got.current_version, got.version) == ("1.15.2", "1.15.2")
    unknown = models.Extension(
        extension_type="microsoft.flux", auto_upgrade_minor_version=False, version="0.0.1"
    )
    with pytest.raises(HttpResponseError):
        kc.extensions.begin_create(*args, unknown, polling_interval=0).result()
    assert "not available" in kc.extensions.get(*args).error_info.message


def test_stopped_aks_refuses_extension_and_flux_writes(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    args = (RG_PROD, AKS, MC, "aks-stop-00004")
    with pytest.raises(ResourceExistsError) as caught:  # the SDK maps 409 to ResourceExistsError
        kc.extensions.begin_create(*args, "flux", FLUX)
    assert caught.value.status_code == 409
    assert caught.value.error is not None and caught.value.error.code == "OperationNotAllowed"
    assert "stopped" in caught.value.error.message
    with pytest.raises(ResourceExistsError):
        kc.flux_configurations.begin_create_or_update(*args, "cluster-config", _config())
    assert list(kc.extensions.list(*args)) == []  # reads work, nothing was written
    assert emulator.admin.stats()["lros"]["started"] == 0


@pytest.mark.parametrize("cluster", ["arc-edge-00002", "arc-edge-00003"])
def test_disconnected_arc_writes_time_out_after_48_hours(
    emulator: RunningEmulator, cluster: str
) -> None:
    kc = kc_client(emulator)
    args = (RG_EDGE, ARC, CC, cluster)
    poller = kc.flux_configurations.begin_create_or_update(
        *args, "cluster-config", _config(), polling=False
    )
    url = poller.polling_method()._initial_response.http_response.headers["Azure-AsyncOperation"]
    op_id = url.split("/operations/")[1].split("?")[0]
    status = kc.flux_config_operation_status.get
    for _ in range(3):  # polls do not move it: the cluster cannot apply anything
        assert status(*args, "cluster-config", op_id).status == "Creating"
    emulator.admin.advance_clock(47 * 3600)
    assert status(*args, "cluster-config", op_id).status == "Creating"
    assert kc.flux_configurations.get(*args, "cluster-config").provisioning_state == "Creating"
    assert kc.extensions.get(*args, "flux").provisioning_state == "Creating"
    emulator.admin.advance_clock(3600 + 1)
    done = status(*args, "cluster-config", op_id)
    assert done.status == "Failed" and done.error.code == "OperationTimedOut"
    assert "48 hours" in done.error.message
    config = kc.flux_configurations.get(*args, "cluster-config")
    assert config.provisioning_state == "Failed" and "48 hours" in config.error_message
    extension = kc.extensions.get(*args, "flux")  # installed for it: timed out as well
    assert (extension.provisioning_state, extension.error_info.code) == (
        "Failed",
        "OperationTimedOut",
    )


def test_a_reconnected_arc_cluster_applies_pending_writes(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    args = (RG_EDGE, ARC, CC, "arc-edge-00002", "flux")
    poller = kc.extensions.begin_create(*args, FLUX, polling=False)
    url = poller.polling_method()._initial_response.http_response.headers["Azure-AsyncOperation"]
    op_id = url.split("/operations/")[1].split("?")[0]
    emulator.admin.advance_clock(3600)
    assert kc.operation_status.get(*args, op_id).status == "Creating"
    emulator.admin.put_resource(arc("arc-edge-00002", status="Connected"))
    states = [kc.operation_status.get(*args, op_id).status for _ in range(2)]
    assert states == ["Creating", "Succeeded"]
    assert kc.extensions.get(*args).current_version == "1.17.3"


def test_flux_compliance_pending_then_compliant(start_emulator: EmulatorFactory) -> None:
    with start_emulator(reconcile_seconds=30) as emu:
        kc = kc_client(emu)
        args = (RG_PROD, AKS, MC, "aks-prod-00001", "apps")
        done = kc.flux_configurations.begin_create_or_update(
            *args, _config(), polling_interval=0
        ).result()
        assert (done.provisioning_state, done.compliance_state) == ("Succeeded", "Pending")
        assert done.statuses == []
        emu.admin.advance_clock(29)
        assert kc.flux_configurations.get(*args).compliance_state == "Pending"
        emu.admin.advance_clock(2)
        got = kc.flux_configurations.get(*args)
        assert got.compliance_state == "Compliant"
        assert [(s.kind, s.compliance_state) for s in got.statuses] == [
            ("GitRepository", "Compliant"),
            ("Kustomization", "Compliant"),
        ]
        assert got.source_synced_commit_id.startswith("main/")
        assert got.status_updated_at is not None
        # A change reconciles again: Pending until the reconcile is over.
        kc.flux_configurations.begin_update(
            *args, models.FluxConfigurationPatch(suspend=True), polling_interval=0
        ).result()
        assert kc.flux_configurations.get(*args).compliance_state == "Pending"
        emu.admin.advance_clock(31)
        assert kc.flux_configurations.get(*args).compliance_state == "Suspended"


def test_failing_sources_and_faults_make_configurations_non_compliant(
    start_emulator: EmulatorFactory, fleet: dict
) -> None:
    snapshot = copy.deepcopy(fleet)
    snapshot["emulator"] = {"failingSources": ["https://github.com/contoso/broken.git"]}
    with start_emulator(snapshot) as emu:
        kc = kc_client(emu)
        args = (RG_PROD, AKS, MC, "aks-prod-00001")
        broken = kc.flux_configurations.begin_create_or_update(
            *args, "broken", _config("https://github.com/contoso/broken"), polling_interval=0
        ).result()
        assert (broken.provisioning_state, broken.compliance_state) == (
            "Succeeded",
            "Non-Compliant",
        )
        assert broken.statuses[0].status_conditions[0].reason == "GitOperationFailed"
        fine = kc.flux_configurations.begin_create_or_update(
            *args, "fine", _config(), polling_interval=0
        ).result()
        assert fine.compliance_state == "Compliant"
        emu.admin.add_fault(
            action="non_compliant", pathRegex="/fluxConfigurations/marked$", count=1
        )
        marked = kc.flux_configurations.begin_create_or_update(
            *args, "marked", _config(), polling_interval=0
        ).result()
        assert marked.compliance_state == "Non-Compliant"
        emu.admin.set_failing_sources([GIT_URL])
        kc.flux_configurations.begin_update(
            *args,
            "fine",
            models.FluxConfigurationPatch(
                suspend=False, kustomizations={"x": models.KustomizationPatchDefinition(path="./x")}
            ),
            polling_interval=0,
        ).result()
        assert kc.flux_configurations.get(*args, "fine").compliance_state == "Non-Compliant"


def test_auto_upgrade_follows_the_catalogue(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    pinned = models.Extension(
        extension_type="microsoft.flux", auto_upgrade_minor_version=False, version="1.17.2"
    )
    kc.extensions.begin_create(
        RG_PROD, AKS, MC, "aks-prod-00002", "flux", pinned, polling_interval=0
    ).result()
    kc.extensions.begin_create(RG_EDGE, ARC, CC, "arc-edge-00002", "flux", FLUX, polling=False)
    assert kc.extensions.get(RG_PROD, AKS, MC, "aks-prod-00001", "flux").current_version == "1.17.2"
    catalog = copy.deepcopy(CATALOG)
    catalog["microsoft.flux"]["Stable"].insert(0, "1.18.0")
    upgraded = emulator.admin.set_catalog(catalog)
    assert upgraded == [f"{kc.extensions.get(RG_PROD, AKS, MC, 'aks-prod-00001', 'flux').id}"]
    assert kc.extensions.get(RG_PROD, AKS, MC, "aks-prod-00001", "flux").current_version == "1.18.0"
    assert kc.extensions.get(RG_PROD, AKS, MC, "aks-prod-00002", "flux").current_version == "1.17.2"
    trains = {
        v.release_train: v.versions
        for v in kc.extension_type_versions.list("westeurope", "microsoft.flux")
    }
    assert trains["Stable"][0] == "1.18.0"
    assert emulator.admin.snapshot()["extensionTypeVersions"] == catalog


def test_system_data_tracks_creation_and_changes(emulator: RunningEmulator) -> None:
    creator = kc_client(emulator, FakeCredential(jwt(oid="app-oid", appid="deployer-app")))
    editor = kc_client(emulator, FakeCredential(jwt(oid="user-oid", upn="dev@contoso.com")))
    args = (RG_PROD, AKS, MC, "aks-prod-00001", "apps")
    first = creator.flux_configurations.begin_create_or_update(
        *args, _config(), polling_interval=0
    ).result()
    emulator.admin.advance_clock(60)
    editor.flux_configurations.begin_update(
        *args, models.FluxConfigurationPatch(suspend=True), polling_interval=0
    ).result()
    second = editor.flux_configurations.get(*args)
    assert (first.system_data.created_by, first.system_data.created_by_type) == (
        "deployer-app",
        "Application",
    )
    assert second.system_data.created_at == first.system_data.created_at
    assert (second.system_data.last_modified_by, second.system_data.last_modified_by_type) == (
        "dev@contoso.com",
        "User",
    )
    assert (
        second.system_data.last_modified_at - first.system_data.created_at
    ).total_seconds() >= 60


def test_a_failed_flux_configuration_keeps_its_installed_extension(
    emulator: RunningEmulator,
) -> None:
    kc = kc_client(emulator)
    args = (RG_PROD, AKS, MC, "aks-prod-00002")
    emulator.admin.add_fault(action="lro_fail", pathRegex="/fluxConfigurations/apps$", count=1)
    with pytest.raises(HttpResponseError):
        kc.flux_configurations.begin_create_or_update(
            *args, "apps", _config(), polling_interval=0
        ).result()
    assert kc.flux_configurations.get(*args, "apps").provisioning_state == "Failed"
    assert kc.extensions.get(*args, "flux").provisioning_state == "Succeeded"

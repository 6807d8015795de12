"""Extensions, flux and source control configurations through the real SDK: CRUD and LROs."""

from __future__ import annotations

import io
import json
import re

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from fleet.emulator.testing import RunningEmulator

from .conftest import (
    AKS,
    ARC,
    GIT_URL,
    RG_EDGE,
    RG_PROD,
    SUB1,
    EmulatorFactory,
    child_path,
    kc_client,
    recorded_client,
)

MC = "managedClusters"
CC = "connectedClusters"
OP_URL = re.compile(
    r"^https://127\.0\.0\.1:\d+/subscriptions/.+/providers/Microsoft\.KubernetesConfiguration/"
    r"(extensions|fluxConfigurations|sourceControlConfigurations)/[^/]+/operations/"
    r"[0-9a-f-]{36}\?api-Version=2023-05-01$"
)


def _config(namespace: str = "cluster-config") -> models.FluxConfiguration:
    return models.FluxConfiguration(
        scope="cluster",
        namespace=namespace,
        source_kind="GitRepository",
        git_repository=models.GitRepositoryDefinition(
            url=GIT_URL,
            repository_ref=models.RepositoryRefDefinition(branch="main"),
            sync_interval_in_seconds=600,
        ),
        kustomizations={
            "infra": models.KustomizationDefinition(path="./infrastructure", prune=True),
            "apps": models.KustomizationDefinition(
                path="./apps/staging", prune=True, depends_on=["infra"]
            ),
        },
    )


def test_create_extension_is_an_arm_lro(emulator: RunningEmulator) -> None:
    kc, rec = recorded_client(emulator)
    poller = kc.extensions.begin_create(
        RG_PROD,
        AKS,
        MC,
        "aks-prod-00002",
        "flux",
        models.Extension(
            extension_type="microsoft.flux",
            auto_upgrade_minor_version=True,
            release_train="Stable",
            configuration_settings={"multiTenancy.enforce": "true"},
        ),
        polling_interval=0,
    )
    ext = poller.result()
    assert ext.provisioning_state == "Succeeded"
    assert ext.current_version == "1.17.3"
    assert ext.scope.cluster.release_namespace == "flux-system"
    assert ext.id == child_path("aks-prod-00002", "extensions", "flux")
    initial, *polls, final = rec.responses
    assert (initial.method, initial.status) == ("PUT", 201)
    assert initial.body["properties"]["provisioningState"] == "Creating"
    assert initial.body["properties"]["currentVersion"] is None
    assert OP_URL.match(initial.headers["azure-asyncoperation"])
    assert initial.headers["operation-location"] == initial.headers["azure-asyncoperation"]
    assert "retry-after" not in initial.headers  # 0: none sent (azure-core reads 0 as absent)
    assert initial.headers["x-ms-async-operation-timeout"] == "PT48H"
    assert [p.body["status"] for p in polls] == ["Creating", "Succeeded"]
    assert all(p.url == initial.headers["azure-asyncoperation"] for p in polls)
    assert polls[-1].body["endTime"] and polls[-1].body["error"] is None
    assert (final.method, final.status) == ("GET", 200)
    # PUT again: 200 and Updating.
    rec.clear()
    again = kc.extensions.begin_create(
        RG_PROD,
        AKS,
        MC,
        "aks-prod-00002",
        "flux",
        models.Extension(extension_type="microsoft.flux", configuration_settings={"a": "b"}),
        polling_interval=0,
    ).result()
    assert rec.responses[0].status == 200
    assert rec.responses[0].body["properties"]["provisioningState"] == "Updating"
    assert again.configuration_settings == {"a": "b"}
    assert again.system_data.created_at <= again.system_data.last_modified_at


def test_get_and_list_across_pages(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    for i in range(7):
        kc.flux_configurations.begin_create_or_update(
            RG_EDGE,
            ARC,
            CC,
            "arc-edge-00001",
            f"config-{i}",
            models.FluxConfiguration(
                namespace=f"ns-{i}", git_repository=models.GitRepositoryDefinition(url=GIT_URL)
            ),
            polling_interval=0,
        ).result()
    emulator.admin.reset_stats()
    names = [c.name for c in kc.flux_configurations.list(RG_EDGE, ARC, CC, "arc-edge-00001")]
    assert names == [f"config-{i}" for i in range(7)]
    stats = emulator.admin.stats()["requests"]["byResourceType"]
    assert stats["Microsoft.KubernetesConfiguration/fluxConfigurations"] == 2  # two pages
    got = kc.flux_configurations.get(RG_EDGE, ARC, CC, "arc-edge-00001", "config-3")
    assert got.namespace == "ns-3" and got.scope == "cluster" and got.source_kind == "GitRepository"
    assert got.git_repository.timeout_in_seconds == 600  # ARM's defaults are filled in
    assert [e.name for e in kc.extensions.list(RG_EDGE, ARC, CC, "arc-edge-00001")] == ["flux"]


def test_patch_is_a_json_merge_patch(emulator: RunningEmulator) -> None:
    kc, rec = recorded_client(emulator)
    args = (RG_PROD, AKS, MC, "aks-prod-00001", "cluster-config")
    kc.flux_configurations.begin_create_or_update(*args, _config(), polling_interval=0).result()
    rec.clear()
    patch = models.FluxConfigurationPatch(
        git_repository=models.GitRepositoryPatchDefinition(url="https://github.com/contoso/other"),
        kustomizations={
            "infra": None,  # null deletes a map entry
            "apps": models.KustomizationPatchDefinition(sync_interval_in_seconds=300),
            "extra": models.KustomizationPatchDefinition(path="./extra"),
        },
    )
    patched = kc.flux_configurations.begin_update(*args, patch, polling_interval=0).result()
    assert rec.responses[0].status == 202
    assert OP_URL.match(rec.responses[0].headers["azure-asyncoperation"])
    assert patched.git_repository.url == "https://github.com/contoso/other"
    assert patched.git_repository.repository_ref.branch == "main"  # untouched fields are kept
    assert patched.git_repository.sync_interval_in_seconds == 600
    assert set(patched.kustomizations) == {"apps", "extra"}
    apps = patched.kustomizations["apps"]
    assert (apps.path, apps.sync_interval_in_seconds, apps.depends_on) == (
        "./apps/staging",
        300,
        ["infra"],
    )
    assert patched.kustomizations["extra"].timeout_in_seconds == 600  # a new entry gets defaults
    # The SDK model cannot send a null field; a raw body can (as the spec example does).
    raw = {"properties": {"kustomizations": {"apps": {"dependsOn": None}}, "suspend": True}}
    again = kc.flux_configurations.begin_update(
        *args, io.BytesIO(json.dumps(raw).encode()), polling_interval=0
    ).result()
    assert again.kustomizations["apps"].depends_on is None
    assert again.suspend is True
    # Nothing changes: 200, no operation.
    rec.clear()
    same = kc.flux_configurations.begin_update(
        *args, models.FluxConfigurationPatch(suspend=True)
    ).result()
    assert [r.status for r in rec.responses] == [200]
    assert "azure-asyncoperation" not in rec.responses[0].headers
    assert same.suspend is True


def test_create_only_properties_are_refused(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    args = (RG_PROD, AKS, MC, "aks-prod-00001", "cluster-config")
    for body in (
        {"properties": {"namespace": "elsewhere"}},
        {"properties": {"scope": "namespace"}},
    ):
        with pytest.raises(HttpResponseError) as caught:
            kc.flux_configurations.begin_update(*args, io.BytesIO(json.dumps(body).encode()))
        assert caught.value.status_code == 400
        assert (
            caught.value.error is not None and caught.value.error.code == "PropertyChangeNotAllowed"
        )
    with pytest.raises(HttpResponseError, match="PropertyChangeNotAllowed"):
        kc.flux_configurations.begin_create_or_update(*args, _config(namespace="other"))
    ext_args = (RG_PROD, AKS, MC, "aks-prod-00001", "flux")
    with pytest.raises(HttpResponseError, match="PropertyChangeNotAllowed"):
        kc.extensions.begin_create(*ext_args, models.Extension(extension_type="microsoft.dapr"))
    with pytest.raises(HttpResponseError, match="PropertyChangeNotAllowed"):
        kc.extensions.begin_update(
            *ext_args,
            io.BytesIO(b'{"properties": {"scope": {"namespace": {"targetNamespace": "x"}}}}'),
        )
    with pytest.raises(HttpResponseError, match="InvalidRequestContent"):
        kc.extensions.begin_update(
            *ext_args, io.BytesIO(b'{"properties": {"currentVersionX": "1"}}')
        )
    # A pinned version needs auto-upgrade off.
    with pytest.raises(HttpResponseError, match="autoUpgradeMinorVersion must be 'false'"):
        kc.extensions.begin_update(*ext_args, models.PatchExtension(version="1.17.2"))
    # Validation errors never echo request values (a body may carry secrets).
    with pytest.raises(HttpResponseError) as invalid:
        kc.flux_configurations.begin_create_or_update(
            RG_PROD,
            AKS,
            MC,
            "aks-prod-00001",
            "x",
            io.BytesIO(
                b'{"properties": {"gitRepository": {"url": "https://h"}, '
                b'"namespace": "SeCrEt_UPPER"}}'
            ),
        )
    assert invalid.value.status_code == 400 and "SeCrEt_UPPER" not in str(invalid.value)


def test_delete_is_an_lro_and_force_delete_is_synchronous(emulator: RunningEmulator) -> None:
    kc, rec = recorded_client(emulator)
    args = (RG_PROD, AKS, MC, "aks-prod-00001")
    assert (
        kc.flux_configurations.begin_delete(*args, "cluster-config", polling_interval=0).result()
        is None
    )
    initial = rec.responses[0]
    assert (initial.method, initial.status, initial.body) == ("DELETE", 202, None)
    assert initial.headers["x-ms-async-operation-timeout"] == "PT1H"
    assert [r.body["status"] for r in rec.responses[1:]] == ["Deleting", "Succeeded"]
    with pytest.raises(ResourceNotFoundError):
        kc.flux_configurations.get(*args, "cluster-config")
    rec.clear()
    # Absent: 204, and the SDK is happy.
    assert kc.flux_configurations.begin_delete(*args, "cluster-config").result() is None
    assert [r.status for r in rec.responses] == [204]
    rec.clear()
    kc.extensions.begin_delete(*args, "flux", force_delete=True).result()
    assert [r.status for r in rec.responses] == [200]
    assert "forceDelete=true" in rec.responses[0].url
    with pytest.raises(ResourceNotFoundError):
        kc.extensions.get(*args, "flux")


def test_in_progress_operations_and_their_status(start_emulator: EmulatorFactory) -> None:
    with start_emulator(lro_polls=3, lro_seconds=None) as emu:
        kc, rec = recorded_client(emu)
        args = (RG_PROD, AKS, MC, "aks-prod-00002")
        kc.extensions.begin_create(
            *args, "flux", models.Extension(extension_type="microsoft.flux"), polling=False
        )
        kc.extensions.begin_delete(RG_PROD, AKS, MC, "aks-prod-00001", "flux", polling=False)
        assert kc.extensions.get(*args, "flux").provisioning_state == "Creating"
        op_id = (
            rec.responses[0].headers["azure-asyncoperation"].split("/operations/")[1].split("?")[0]
        )
        running = list(kc.operation_status.list(*args))
        assert [(o.name, o.status) for o in running] == [(op_id, "Creating")]
        states = [kc.operation_status.get(*args, "flux", op_id).status for _ in range(5)]
        assert states == ["Creating", "Creating", "Creating", "Succeeded", "Succeeded"]
        assert list(kc.operation_status.list(*args)) == []
        assert kc.extensions.get(*args, "flux").provisioning_state == "Succeeded"
        with pytest.raises(ResourceNotFoundError):
            kc.operation_status.get(*args, "flux", "00000000-0000-0000-0000-000000000000")
        deleting = list(kc.operation_status.list(RG_PROD, AKS, MC, "aks-prod-00001"))
        assert [o.status for o in deleting] == ["Deleting"]
        assert (
            kc.extensions.get(RG_PROD, AKS, MC, "aks-prod-00001", "flux").provisioning_state
            == "Deleting"
        )


def test_operations_finish_by_emulated_time_too(start_emulator: EmulatorFactory) -> None:
    with start_emulator(lro_polls=None, lro_seconds=30) as emu:
        kc = kc_client(emu)
        args = (RG_PROD, AKS, MC, "aks-prod-00002", "flux")
        kc.extensions.begin_create(
            *args, models.Extension(extension_type="microsoft.flux"), polling=False
        )
        assert kc.extensions.get(*args).provisioning_state == "Creating"
        emu.admin.advance_clock(29)
        assert kc.extensions.get(*args).provisioning_state == "Creating"
        emu.admin.advance_clock(2)
        assert kc.extensions.get(*args).provisioning_state == "Succeeded"


def test_a_newer_write_supersedes_a_running_operation(start_emulator: EmulatorFactory) -> None:
    with start_emulator(lro_polls=5, lro_seconds=None) as emu:
        kc = kc_client(emu)
        args = (RG_PROD, AKS, MC, "aks-prod-00002", "flux")
        first = kc.extensions.begin_create(
            *args, models.Extension(extension_type="microsoft.flux"), polling=False
        )
        url = first.polling_method()._initial_response.http_response.headers["Azure-AsyncOperation"]
        op_id = url.split("/operations/")[1].split("?")[0]
        kc.extensions.begin_create(
            *args,
            models.Extension(extension_type="microsoft.flux", release_train="Preview"),
            polling=False,
        )
        old = kc.operation_status.get(*args[:4], "flux", op_id)
        assert old.status == "Canceled" and old.error.code == "OperationCanceled"


def test_lro_failure_raises_and_leaves_the_resource_failed(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    path = child_path("aks-prod-00002", "extensions", "flux")
    emulator.admin.add_fault(
        action="lro_fail",
        pathPrefix=path,
        code="ExtensionOperationFailed",
        message="helm install timed out",
        count=1,
    )

    def create() -> models.Extension:
        return kc.extensions.begin_create(
            RG_PROD,
            AKS,
            MC,
            "aks-prod-00002",
            "flux",
            models.Extension(extension_type="microsoft.flux"),
            polling_interval=0,
        ).result()

    with pytest.raises(HttpResponseError) as failed:
        create()
    assert "failed" in str(failed.value).lower()
    ext = kc.extensions.get(RG_PROD, AKS, MC, "aks-prod-00002", "flux")
    assert ext.provisioning_state == "Failed"
    assert (ext.error_info.code, ext.error_info.message) == (
        "ExtensionOperationFailed",
        "helm install timed out",
    )
    # The fault was one-shot: the retry succeeds.
    again = create()
    assert again.provisioning_state == "Succeeded" and again.error_info is None
    lros = emulator.admin.stats()["lros"]
    assert (lros["started"], lros["failed"], lros["succeeded"]) == (2, 1, 1)


def test_not_found(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    with pytest.raises(ResourceNotFoundError) as child:
        kc.extensions.get(RG_PROD, AKS, MC, "aks-prod-00002", "flux")
    assert child.value.error is not None and child.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as parent:
        kc.flux_configurations.get(RG_PROD, AKS, MC, "aks-nope", "x")
    assert parent.value.error is not None and parent.value.error.code == "ParentResourceNotFound"
    with pytest.raises(ResourceNotFoundError):
        list(kc.extensions.list(RG_PROD, ARC, CC, "aks-prod-00001"))  # right name, wrong type
    other = kc_client(emulator, sub="00000000-0000-0000-0000-0000000000ff")
    with pytest.raises(ResourceNotFoundError) as no_sub:
        other.extensions.get(RG_PROD, AKS, MC, "aks-prod-00001", "flux")
    assert no_sub.value.error is not None and no_sub.value.error.code == "SubscriptionNotFound"


def test_source_control_configurations(emulator: RunningEmulator) -> None:
    kc, rec = recorded_client(emulator)
    args = (RG_EDGE, ARC, CC, "arc-edge-00001")
    created = kc.source_control_configurations.create_or_update(
        *args,
        "legacy",
        models.SourceControlConfiguration(
            repository_url="git@github.com:contoso/legacy.git",
            operator_namespace="flux",
            configuration_protected_settings={"sshPrivateKey": "c2VjcmV0"},
        ),
    )
    assert rec.responses[0].status == 201 and "azure-asyncoperation" not in rec.responses[0].headers
    assert created.provisioning_state == "Succeeded"
    assert created.operator_instance_name == "legacy" and created.operator_type == "Flux"
    assert created.configuration_protected_settings == {"sshPrivateKey": ""}
    assert kc.source_control_configurations.get(*args, "legacy").repository_url.endswith(
        "legacy.git"
    )
    assert [s.name for s in kc.source_control_configurations.list(*args)] == ["legacy"]
    rec.clear()
    kc.source_control_configurations.begin_delete(*args, "legacy", polling_interval=0).result()
    assert rec.responses[0].status == 200 and "azure-asyncoperation" in rec.responses[0].headers
    assert [r.body["status"] for r in rec.responses[1:]] == ["Deleting", "Succeeded"]
    assert list(kc.source_control_configurations.list(*args)) == []


def test_extension_type_versions_and_rp_operations(emulator: RunningEmulator) -> None:
    kc, rec = recorded_client(emulator)
    trains = {
        v.release_train: v.versions
        for v in kc.extension_type_versions.list("westeurope", "microsoft.flux")
    }
    assert trains["Stable"][:3] == ["1.17.3", "1.17.2", "1.16.12"]
    assert trains["Preview"] == ["1.18.0-preview.1", "1.17.3"]
    assert rec.responses[0].url.startswith(
        f"{emulator.endpoint}/subscriptions/{SUB1}/providers/Microsoft.KubernetesConfiguration/"
        "locations/westeurope/extensionTypes/microsoft.flux/versions?api-version=2022-01-15-preview"
    )
    with pytest.raises(ResourceNotFoundError):
        list(kc.extension_type_versions.list("westeurope", "microsoft.nothing"))
    names = [o.name for o in kc.operations.list()]
    assert "Microsoft.KubernetesConfiguration/fluxConfigurations/write" in names

"""Every Microsoft.KubernetesConfiguration response of a scenario validates against the spec.

A client records every response it receives (initial responses, operation polls, final GETs,
list pages, errors) while a scenario touches each route and each outcome; each body is then
validated against the definition the OpenAPI file names for that operation and status.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from .armspec import spec
from .conftest import (
    AKS,
    ARC,
    GIT_URL,
    RG_EDGE,
    RG_PROD,
    EmulatorFactory,
    Recorded,
    child_path,
    recorded_client,
)

MC, CC = "managedClusters", "connectedClusters"
KINDS = {
    "extensions": ("Extension", "ExtensionsList"),
    "fluxconfigurations": ("FluxConfiguration", "FluxConfigurationsList"),
    "sourcecontrolconfigurations": ("SourceControlConfiguration", "SourceControlConfigurationList"),
}


def definition_of(response: Recorded) -> str | None:
    """The spec definition of a response body (None: the operation has no body)."""
    if response.status >= 400:
        return "ErrorResponse"
    if response.body is None:
        return None
    segments = urlsplit(response.url).path.strip("/").split("/")
    lowered = [s.lower() for s in segments]
    if lowered[:3] == ["providers", "microsoft.kubernetesconfiguration", "operations"]:
        return "ResourceProviderOperationList"
    if "extensiontypes" in lowered:
        return None  # 2022-01-15-preview: not in the vendored 2023-05-01 files
    tail = lowered[lowered.index("microsoft.kubernetesconfiguration") + 1 :]
    if tail == ["operations"]:
        return "OperationStatusList"
    if len(tail) == 4 and tail[2] == "operations":
        return "OperationStatusResult"
    single, many = KINDS[tail[0]]
    return single if len(tail) == 2 else many


def scenario(emu: Any) -> list[Recorded]:
    kc, rec = recorded_client(emu)
    aks1, aks2, stop = (
        (RG_PROD, AKS, MC, "aks-prod-00001"),
        (RG_PROD, AKS, MC, "aks-prod-00002"),
        (RG_PROD, AKS, MC, "aks-stop-00004"),
    )
    arc1, v1 = (RG_EDGE, ARC, CC, "arc-edge-00001"), (RG_EDGE, ARC, CC, "arc-v1-00004")
    config = models.FluxConfiguration(
        namespace="cluster-config",
        git_repository=models.GitRepositoryDefinition(
            url=GIT_URL,
            repository_ref=models.RepositoryRefDefinition(branch="main"),
            https_user="git",
        ),
        kustomizations={
            "infra": models.KustomizationDefinition(path="./infra", prune=True),
            "apps": models.KustomizationDefinition(
                path="./apps",
                depends_on=["infra"],
                post_build=models.PostBuildDefinition(substitute={"env": "prod"}),
            ),
        },
        configuration_protected_settings={"httpsKey": "dG9rZW4="},
    )
    # Reads of what the snapshot holds.
    list(kc.extensions.list(*aks1))
    kc.extensions.get(*aks1, "flux")
    list(kc.flux_configurations.list(*aks1))
    kc.flux_configurations.get(*aks1, "cluster-config")
    # Extension lifecycle with polls, patch, delete.
    kc.extensions.begin_create(
        *aks2,
        "flux",
        models.Extension(
            extension_type="microsoft.flux",
            configuration_settings={"a": "b"},
            configuration_protected_settings={"k": "v"},
        ),
        polling_interval=0,
    ).result()
    kc.extensions.begin_update(
        *aks2, "flux", models.PatchExtension(release_train="Preview"), polling_interval=0
    ).result()
    kc.extensions.begin_update(
        *aks2, "flux", models.PatchExtension(release_train="Preview")
    ).result()  # 200
    # Flux configurations: auto-installed extension, pages, patch, compliance, delete.
    for name in ("cluster-config", "team-a", "team-b", "team-c", "team-d", "team-e"):
        kc.flux_configurations.begin_create_or_update(
            *arc1, name, config, polling_interval=0
        ).result()
    list(kc.flux_configurations.list(*arc1))
    list(kc.extensions.list(*arc1))
    emu.admin.set_failing_sources(["https://github.com/contoso/broken"])
    kc.flux_configurations.begin_update(
        *arc1,
        "team-a",
        models.FluxConfigurationPatch(
            git_repository=models.GitRepositoryPatchDefinition(
                url="https://github.com/contoso/broken"
            ),
            kustomizations={"infra": None},
        ),
        polling_interval=0,
    ).result()
    kc.flux_configurations.get(*arc1, "team-a")
    kc.flux_configurations.begin_update(
        *arc1, "team-b", models.FluxConfigurationPatch(suspend=True), polling_interval=0
    ).result()
    kc.flux_configurations.begin_delete(*arc1, "team-c", polling_interval=0).result()
    kc.flux_configurations.begin_delete(*arc1, "team-d", force_delete=True).result()
    kc.flux_configurations.begin_delete(*arc1, "gone").result()  # 204
    # In-progress operations listed, then polled by id.
    kc.flux_configurations.begin_delete(*arc1, "team-e", polling=False)
    list(kc.operation_status.list(*arc1))
    op_url = rec.responses[-2].headers["azure-asyncoperation"]
    op_id = op_url.split("/operations/")[1].split("?")[0]
    kc.flux_config_operation_status.get(*arc1, "team-e", op_id)
    ext_op = next(r for r in rec.responses if r.method == "PUT" and "/extensions/" in r.url)
    kc.operation_status.get(
        *aks2, "flux", ext_op.headers["azure-asyncoperation"].split("/operations/")[1].split("?")[0]
    )
    # Flux v1.
    kc.source_control_configurations.create_or_update(
        *arc1,
        "legacy",
        models.SourceControlConfiguration(
            repository_url="git@github.com:contoso/legacy.git",
            configuration_protected_settings={"sshPrivateKey": "a2V5"},
        ),
    )
    kc.source_control_configurations.get(*arc1, "legacy")
    list(kc.source_control_configurations.list(*arc1))
    kc.source_control_configurations.begin_delete(*arc1, "legacy", polling_interval=0).result()
    # Failures: LRO failed (Flux v1), 404s, 400s, 409.
    with pytest.raises(HttpResponseError):
        kc.extensions.begin_create(
            *v1, "flux", models.Extension(extension_type="microsoft.flux"), polling_interval=0
        ).result()
    kc.extensions.get(*v1, "flux")
    for call in (
        lambda: kc.extensions.get(*aks1, "nope"),
        lambda: kc.flux_configurations.get(RG_PROD, AKS, MC, "aks-nope", "x"),
        lambda: kc.flux_configurations.begin_update(
            *aks1, "cluster-config", io.BytesIO(b'{"properties": {"scope": "namespace"}}')
        ),
        lambda: kc.flux_configurations.begin_create_or_update(
            *aks1, "bad", io.BytesIO(b"{not json")
        ),
        lambda: kc.extensions.begin_create(
            *stop, "flux", models.Extension(extension_type="microsoft.flux")
        ),
    ):
        with pytest.raises(HttpResponseError):
            call()
    list(kc.operations.list())
    list(kc.extension_type_versions.list("westeurope", "microsoft.flux"))
    return rec.responses


def test_every_kubernetes_configuration_response_validates(start_emulator: EmulatorFactory) -> None:
    with start_emulator(reconcile_seconds=0) as emu:
        responses = scenario(emu)
    validator = spec()
    checked: Counter[str] = Counter()
    problems: list[str] = []
    for response in responses:
        definition = definition_of(response)
        if definition is None:
            continue
        checked[definition] += 1
        for error in validator.errors(definition, response.body):
            problems.append(
                f"{response.method} {response.url} -> {response.status}: {definition}{error}"
            )
    assert problems == []
    assert set(checked) == {
        "Extension",
        "ExtensionsList",
        "FluxConfiguration",
        "FluxConfigurationsList",
        "SourceControlConfiguration",
        "SourceControlConfigurationList",
        "OperationStatusResult",
        "OperationStatusList",
        "ResourceProviderOperationList",
        "ErrorResponse",
    }
    assert sum(checked.values()) > 60
    statuses = Counter(r.status for r in responses)
    assert {200, 201, 202, 204, 400, 404, 409} <= set(statuses)
    # The scenario saw the states the definitions constrain.
    states = {
        r.body["properties"].get("provisioningState")
        for r in responses
        if isinstance(r.body, dict) and "properties" in r.body and "id" in r.body
    }
    assert {"Creating", "Updating", "Succeeded", "Failed"} <= states
    compliance = {
        r.body["properties"].get("complianceState")
        for r in responses
        if isinstance(r.body, dict) and "fluxConfigurations/" in str(r.body.get("id"))
    }
    assert {"Pending", "Compliant", "Non-Compliant", "Suspended"} <= compliance


def test_the_validator_catches_what_the_spec_forbids() -> None:
    validator = spec()
    good = {
        "id": child_path("aks-1", "extensions", "flux"),
        "name": "flux",
        "type": "Microsoft.KubernetesConfiguration/extensions",
        "properties": {
            "extensionType": "microsoft.flux",
            "version": None,
            "provisioningState": "Succeeded",
        },
    }
    assert validator.errors("Extension", good) == []
    typo = {**good, "properties": {**good["properties"], "curentVersion": "1.0"}}
    assert any("curentVersion" in e for e in validator.errors("Extension", typo))
    state = {**good, "properties": {**good["properties"], "provisioningState": "Installing"}}
    assert validator.errors("Extension", state)
    not_nullable = {**good, "properties": {**good["properties"], "extensionType": None}}
    assert validator.errors("Extension", not_nullable)
    assert validator.errors(
        "FluxConfiguration", {"properties": {"complianceState": "NonCompliant"}}
    )
    assert validator.errors("OperationStatusResult", {"id": "x", "name": "y"})  # status is required
    assert validator.errors("ErrorResponse", {"error": {"code": 1}})

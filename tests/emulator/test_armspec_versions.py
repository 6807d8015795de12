"""Every answer of the newer api-versions validates against its own version's OpenAPI file.

The scenario drives the 2025 SDK packages (fluxConfigurations 2025-04-01, extensions
2025-03-01) and the 2026-05-01 catalogue through every route and outcome, records every
response, and validates each body against the definition of the api-version in its URL. It
also reads, with 2023-05-01, what 2025-04-01 wrote: the members 2023-05-01 lacks are left out,
and a body carrying them is refused in 2023-05-01 with ARM's error.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from fleet.emulator.testing import RunningEmulator

from .armspec import spec
from .conftest import (
    AKS,
    ARC,
    GIT_URL,
    RG_EDGE,
    RG_PROD,
    SUB1,
    EmulatorFactory,
    Recorded,
    Recorder,
    extensions_client,
    flux_client,
    kc_client,
)

MC, CC = "managedClusters", "connectedClusters"
KC = "Microsoft.KubernetesConfiguration"
OCI = {
    "scope": "cluster",
    "namespace": "apps",
    "sourceKind": "OCIRepository",
    "ociRepository": {
        "url": "oci://example.azurecr.io/manifests/app",
        "repositoryRef": {"tag": "v1.2.3"},
        "layerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip"},
        "verify": {"provider": "cosign", "matchOidcIdentity": [{"issuer": "i", "subject": "s"}]},
        "tlsConfig": {"caCertificate": "Y2E="},
        "useWorkloadIdentity": True,
    },
    "kustomizations": {"app": {"path": "./", "prune": True}},
}
GIT = {
    "namespace": "cluster-config",
    "gitRepository": {
        "url": GIT_URL,
        "repositoryRef": {"branch": "main"},
        "provider": "GitHub",
    },
    "kustomizations": {"infra": {"path": "./infra", "prune": True}},
}


def version_of(url: str) -> str:
    query = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    return query["api-version"]


def definition_of(response: Recorded) -> str | None:
    """The spec definition of a response body in its version (None: no body)."""
    if response.status >= 400:
        return "ErrorResponse"
    if response.body is None:
        return None
    lowered = [s.lower() for s in urlsplit(response.url).path.strip("/").split("/")]
    if "extensiontypes" in lowered:
        tail = lowered[lowered.index("extensiontypes") :]
        return {
            1: "ExtensionTypesList",
            2: "ExtensionType",
            3: "ExtensionTypeVersionsList",
            4: "ExtensionTypeVersionForReleaseTrain",
        }[len(tail)]
    tail = lowered[lowered.index("microsoft.kubernetesconfiguration") + 1 :]
    if len(tail) == 4 and tail[2] == "operations":
        return "OperationStatusResult"
    single, many = {
        "extensions": ("Extension", "ExtensionsList"),
        "fluxconfigurations": ("FluxConfiguration", "FluxConfigurationsList"),
    }[tail[0]]
    return single if len(tail) == 2 else many


def scenario(emu: RunningEmulator) -> list[Recorded]:
    rec = Recorder()
    flux = flux_client(emu, raw_response_hook=rec).flux_configurations
    ext = extensions_client(emu, raw_response_hook=rec)
    aks1, aks2 = (RG_PROD, AKS, MC, "aks-prod-00001"), (RG_PROD, AKS, MC, "aks-prod-00002")
    stop, arc1 = (RG_PROD, AKS, MC, "aks-stop-00004"), (RG_EDGE, ARC, CC, "arc-edge-00001")
    # Reads of what the snapshot holds.
    list(ext.extensions.list(*aks1))
    ext.extensions.get(*aks1, "flux")
    list(flux.list(*aks1))
    flux.get(*aks1, "cluster-config")
    # Extensions: create (new properties), patch, no-op patch, delete, force delete.
    ext.extensions.begin_create(
        *aks2,
        "flux",
        {
            "properties": {
                "extensionType": "microsoft.flux",
                "autoUpgradeMode": "patch",
                "configurationProtectedSettings": {"k": "v"},
            }
        },
        polling_interval=0,
    ).result()
    patch = {"properties": {"releaseTrain": "Preview"}}
    ext.extensions.begin_update(*aks2, "flux", patch, polling_interval=0).result()
    ext.extensions.begin_update(*aks2, "flux", patch, polling_interval=0).result()
    # Flux configurations: OCI and provider sources, pages, patch, compliance, deletes.
    for name, props in (("oci", OCI), *((f"team-{i}", GIT) for i in "abcdef")):
        flux.begin_create_or_update(*arc1, name, {"properties": props}, polling_interval=0).result()
    list(flux.list(*arc1))
    emu.admin.set_failing_sources(["https://github.com/contoso/broken"])
    flux.begin_update(
        *arc1,
        "team-a",
        {"properties": {"gitRepository": {"url": "https://github.com/contoso/broken"}}},
        polling_interval=0,
    ).result()
    flux.get(*arc1, "team-a")
    flux.begin_update(
        *arc1, "team-b", {"properties": {"suspend": True}}, polling_interval=0
    ).result()
    flux.begin_delete(*arc1, "team-c", polling_interval=0).result()
    flux.begin_delete(*arc1, "team-d", force_delete=True).result()
    flux.begin_delete(*arc1, "gone").result()
    put = next(
        r for r in rec.responses if r.method == "PUT" and r.url.split("?")[0].endswith("/oci")
    )
    op_id = put.headers["azure-asyncoperation"].split("/operations/")[1].split("?")[0]
    flux_client(emu, raw_response_hook=rec).flux_config_operation_status.get(*arc1, "oci", op_id)
    # Failures: 404s, 400s, 409.
    for call in (
        lambda: ext.extensions.get(*aks1, "nope"),
        lambda: flux.get(RG_PROD, AKS, MC, "aks-nope", "x"),
        lambda: flux.begin_update(
            *aks1, "cluster-config", io.BytesIO(b'{"properties": {"scope": "namespace"}}')
        ),
        lambda: flux.begin_create_or_update(*aks1, "bad", io.BytesIO(b"{not json")),
        lambda: ext.extensions.begin_create(
            *stop, "flux", {"properties": {"extensionType": "microsoft.flux"}}
        ),
    ):
        with pytest.raises(HttpResponseError):
            call()
    # The 2026-05-01 catalogue at every scope, through an ARM pipeline.
    cluster = f"/subscriptions/{SUB1}/resourceGroups/{RG_EDGE}/providers/{ARC}/{CC}/arc-edge-00001"
    scopes = (
        f"/subscriptions/{SUB1}/providers/{KC}",
        f"/subscriptions/{SUB1}/providers/{KC}/locations/westeurope",
        f"{cluster}/providers/{KC}",
    )
    for scope in scopes:
        for path, params in (
            ("/extensionTypes", {}),
            ("/extensionTypes/microsoft.flux", {}),
            ("/extensionTypes/microsoft.flux/versions", {}),
            ("/extensionTypes/microsoft.flux/versions", {"releaseTrain": "preview"}),
            (
                "/extensionTypes/microsoft.flux/versions",
                {"majorVersion": "1", "showLatest": "true"},
            ),
            ("/extensionTypes/microsoft.flux/versions/1.17.3", {}),
            ("/extensionTypes/nope", {}),
        ):
            request = HttpRequest(
                "GET", scope + path, params={"api-version": "2026-05-01", **params}
            )
            ext.send_request(request)
    return rec.responses


def test_every_newer_response_validates_against_its_version(
    start_emulator: EmulatorFactory,
) -> None:
    with start_emulator(reconcile_seconds=0) as emu:
        responses = scenario(emu)
    checked: Counter[tuple[str, str]] = Counter()
    problems: list[str] = []
    for response in responses:
        definition = definition_of(response)
        if definition is None:
            continue
        version = version_of(response.url)
        checked[(version, definition)] += 1
        for error in spec(version=version).errors(definition, response.body):
            problems.append(f"{response.method} {response.url} -> {response.status}: {error}")
    assert problems == []
    assert {v for v, _ in checked} == {"2025-03-01", "2025-04-01", "2026-05-01"}
    assert {d for _, d in checked} >= {
        "Extension",
        "ExtensionsList",
        "FluxConfiguration",
        "FluxConfigurationsList",
        "OperationStatusResult",
        "ErrorResponse",
        "ExtensionType",
        "ExtensionTypesList",
        "ExtensionTypeVersionForReleaseTrain",
        "ExtensionTypeVersionsList",
    }
    statuses = Counter(r.status for r in responses)
    assert {200, 201, 202, 204, 400, 404, 409} <= set(statuses)
    oci = [
        r.body
        for r in responses
        if isinstance(r.body, dict) and str(r.body.get("id", "")).endswith("/oci")
    ]
    assert oci and all(b["properties"]["ociRepository"]["url"].startswith("oci://") for b in oci)
    assert all(b["properties"]["ociRepository"]["tlsConfig"]["caCertificate"] == "" for b in oci)


def test_older_versions_read_newer_resources_without_what_they_lack(
    start_emulator: EmulatorFactory,
) -> None:
    args = (RG_EDGE, ARC, CC, "arc-edge-00001")
    with start_emulator(reconcile_seconds=0) as emu:
        flux = flux_client(emu).flux_configurations
        flux.begin_create_or_update(*args, "oci", {"properties": OCI}, polling_interval=0).result()
        flux.begin_create_or_update(*args, "git", {"properties": GIT}, polling_interval=0).result()
        rec = Recorder()
        old = kc_client(emu, raw_response_hook=rec)
        old.flux_configurations.get(*args, "oci")
        old.flux_configurations.get(*args, "git")
        list(old.flux_configurations.list(*args))
        list(old.extensions.list(*args))
    oci, git, page, extensions = (r.body for r in rec.responses)
    assert "ociRepository" not in oci["properties"]
    assert oci["properties"]["sourceKind"] == "OCIRepository"  # an enum value is never rewritten
    assert "provider" not in git["properties"]["gitRepository"]
    assert all("autoUpgradeMode" not in e["properties"] for e in extensions["value"])
    strict, lenient = spec(), spec(extensible_enums=True)
    assert strict.errors("FluxConfiguration", git) == []
    assert [e for e in strict.errors("FluxConfiguration", oci) if "sourceKind" not in e] == []
    assert lenient.errors("FluxConfiguration", oci) == []
    assert lenient.errors("FluxConfigurationsList", page) == []
    assert strict.errors("ExtensionsList", extensions) == []


@pytest.mark.parametrize(
    ("body", "member"),
    [
        ({"properties": OCI}, "ociRepository"),
        ({"properties": GIT}, "provider"),
        ({"properties": {k: v for k, v in OCI.items() if k != "ociRepository"}}, "sourceKind"),
    ],
)
def test_a_body_2023_05_01_does_not_know_is_refused(
    emulator: RunningEmulator, body: dict[str, Any], member: str
) -> None:
    old = kc_client(emulator)
    with pytest.raises(HttpResponseError) as raised:
        old.flux_configurations.begin_create_or_update(
            RG_EDGE, ARC, CC, "arc-edge-00001", "x", io.BytesIO(json.dumps(body).encode())
        )
    assert raised.value.status_code == 400
    assert raised.value.error is not None and raised.value.error.code == "InvalidRequestContent"
    assert member in raised.value.error.message and "2023-05-01" in raised.value.error.message


def test_extension_members_of_2025_03_01_are_refused_in_2023_05_01(
    emulator: RunningEmulator,
) -> None:
    body = {"properties": {"extensionType": "microsoft.flux", "autoUpgradeMode": "patch"}}
    with pytest.raises(HttpResponseError) as raised:
        kc_client(emulator).extensions.begin_create(
            RG_PROD, AKS, MC, "aks-prod-00002", "flux", io.BytesIO(json.dumps(body).encode())
        )
    assert raised.value.status_code == 400
    assert "autoUpgradeMode" in str(raised.value.error.message if raised.value.error else "")
    reported = extensions_client(emulator).extensions.get(
        RG_PROD, AKS, MC, "aks-prod-00001", "flux"
    )
    assert reported["properties"]["autoUpgradeMode"] == "compatible"  # the RP's default

"""What a client nobody here wrote expects of ARM (issue 13, item 6), through the SDK and
plain HTTPS: provider registration state, the anonymous cloud metadata, query parameter names
in any case, and ``Retry-After`` as azure-core reads it.

The Azure CLI's ``k8s-extension`` / ``k8s-configuration`` extensions are not on PyPI (they
install from Azure's own extension index, which this machine cannot reach), so the calls they
make are made here with the SDK and plain requests instead.
"""

from __future__ import annotations

import copy
import http.client
import ssl
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from fleet.emulator.testing import RunningEmulator, running_emulator

from .conftest import (
    AKS,
    FAST,
    RG_PROD,
    SUB1,
    SUB2,
    EmulatorFactory,
    extensions_client,
    kc_client,
    rm_client,
)

KC = "Microsoft.KubernetesConfiguration"
MC_ARGS = (RG_PROD, AKS, "managedClusters", "aks-prod-00001")


def _get(emu: RunningEmulator, path: str, **headers: str) -> tuple[int, dict[str, str], Any]:
    port = int(emu.endpoint.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(emu.ca_bundle))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, orjson.loads(body or b"null")


@pytest.fixture
def unregistered(fleet: dict[str, Any]) -> Iterator[RunningEmulator]:
    doc = copy.deepcopy(fleet)
    for sub in doc["subscriptions"]:
        if sub["subscriptionId"] == SUB2:
            sub["providers"] = {KC: "NotRegistered"}
    with running_emulator(doc, **FAST) as emu:
        yield emu


def test_provider_registration_is_read_through_azure_mgmt_resource(
    unregistered: RunningEmulator,
) -> None:
    registered = rm_client(unregistered, SUB1).providers.get(KC)
    assert (registered.namespace, registered.registration_state) == (KC, "Registered")
    assert {t.resource_type for t in registered.resource_types} >= {
        "extensions",
        "fluxConfigurations",
        "extensionTypes",
    }
    flux = next(t for t in registered.resource_types if t.resource_type == "fluxConfigurations")
    assert {"2023-05-01", "2025-04-01"} <= set(flux.api_versions)
    assert rm_client(unregistered, SUB2).providers.get(KC.lower()).registration_state == (
        "NotRegistered"
    )
    listed = {p.namespace for p in rm_client(unregistered, SUB1).providers.list()}
    assert {KC, "Microsoft.ContainerService", "Microsoft.Kubernetes"} <= listed
    with pytest.raises(ResourceNotFoundError):
        rm_client(unregistered, SUB1).providers.get("Microsoft.Nope")


def test_an_unregistered_subscription_refuses_configuration_requests(
    unregistered: RunningEmulator,
) -> None:
    args = ("rg-stg-weu-1", AKS, "managedClusters", "aks-stg-00001")
    for call in (
        lambda: list(extensions_client(unregistered, SUB2).extensions.list(*args)),
        lambda: kc_client(unregistered, sub=SUB2).flux_configurations.get(*args, "x"),
    ):
        with pytest.raises(HttpResponseError) as raised:
            call()
        assert raised.value.status_code == 409
        assert raised.value.error is not None
        assert raised.value.error.code == "MissingSubscriptionRegistration"
    assert list(extensions_client(unregistered, SUB1).extensions.list(*MC_ARGS)) != []


def test_cloud_metadata_is_anonymous(emulator: RunningEmulator) -> None:
    status, _, clouds = _get(emulator, "/metadata/endpoints?api-version=2019-05-01")
    assert status == 200 and isinstance(clouds, list)
    assert clouds[0]["resourceManager"] == emulator.endpoint + "/"
    assert clouds[0]["authentication"]["audiences"]
    status, _, legacy = _get(emulator, "/metadata/endpoints")
    assert status == 200 and legacy["name"] == "AzureCloud"


def test_query_parameter_names_are_matched_without_case(emulator: RunningEmulator) -> None:
    path = f"/subscriptions/{SUB1}/resourcegroups/rg-prod-weu-1/providers/{AKS}/managedClusters"
    path += f"/aks-prod-00001/providers/{KC}/fluxConfigurations"
    for name in ("api-version", "api-Version", "API-VERSION"):
        status, _, body = _get(emulator, f"{path}?{name}=2025-04-01", Authorization="Bearer t")
        assert status == 200, body
        assert [c["name"] for c in body["value"]] == ["cluster-config"]


def test_retry_after_is_sent_only_when_it_means_something(
    start_emulator: EmulatorFactory,
) -> None:
    body = {"properties": {"extensionType": "microsoft.flux"}}
    for seconds, expected in ((0, None), (1, "1")):
        with start_emulator(retry_after=seconds) as emu:
            seen: list[dict[str, str]] = []
            client = extensions_client(
                emu,
                raw_response_hook=lambda r, seen=seen: seen.append(dict(r.http_response.headers)),
            )
            client.extensions.begin_create(
                *MC_ARGS[:3], "aks-prod-00002", "flux", body, polling_interval=0
            ).result()
            put = seen[0]
            assert {k.lower(): v for k, v in put.items()}.get("retry-after") == expected

"""Fixtures of the emulator tests: a small hand-made fleet, the emulator, the real SDK clients.

The tests talk to the emulator only through the real SDK clients over HTTPS (plus the admin
helpers of ``fleet.emulator.testing``). The credential is a trivial ``TokenCredential``: an
object whose ``get_token`` returns an ``AccessToken`` (that is the whole protocol; nothing of
the SDK is mocked).
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.kubernetesconfiguration.extensions import (
    KubernetesConfigurationExtensionsMgmtClient,
)
from azure.mgmt.kubernetesconfiguration.fluxconfigurations import (
    KubernetesConfigurationFluxConfigurationsMgmtClient,
)
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient
from azure.mgmt.resourcegraph import ResourceGraphClient

from fleet.emulator import scenario
from fleet.emulator.testing import RunningEmulator, running_emulator

SUB1 = "00000000-0000-0000-0000-000000000001"
SUB2 = "00000000-0000-0000-0000-000000000002"
RG_PROD = "rg-prod-weu-1"
RG_EDGE = "rg-edge-weu-1"
RG_STG = "rg-stg-weu-1"
AKS = "Microsoft.ContainerService"
ARC = "Microsoft.Kubernetes"
KC = "providers/Microsoft.KubernetesConfiguration"
# The scenario's catalogue (docs/scenario.md), as the emulator serves it.
CATALOG = {
    "microsoft.flux": {
        "Stable": list(scenario.STABLE_VERSIONS),
        "Preview": list(scenario.PREVIEW_VERSIONS),
    }
}
GIT_URL = "https://github.com/fluxcd/flux2-kustomize-helm-example"


def rg_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def cluster_id(name: str, *, sub: str = SUB1, rg: str = RG_PROD, arc: bool = False) -> str:
    kind = (
        "Microsoft.Kubernetes/connectedClusters"
        if arc
        else "Microsoft.ContainerService/managedClusters"
    )
    return f"{rg_id(sub, rg)}/providers/{kind}/{name}"


def aks(
    name: str,
    *,
    sub: str = SUB1,
    rg: str = RG_PROD,
    vm: str = "Standard_D4s_v5",
    power: str = "Running",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": cluster_id(name, sub=sub, rg=rg),
        "type": "Microsoft.ContainerService/managedClusters",
        "name": name,
        "location": "westeurope",
        "tags": tags if tags is not None else {"env": "prod"},
        "properties": {
            "kubernetesVersion": "1.30.4",
            "provisioningState": "Succeeded",
            "powerState": {"code": power},
            "agentPoolProfiles": [{"name": "sys", "vmSize": vm, "osType": "Linux", "count": 3}],
        },
    }


def arc(
    name: str, *, status: str = "Connected", rg: str = RG_EDGE, last: str = "2026-11-20T10:00:00Z"
) -> dict[str, Any]:
    return {
        "id": cluster_id(name, rg=rg, arc=True),
        "type": "Microsoft.Kubernetes/connectedClusters",
        "name": name,
        "location": "westeurope",
        "tags": {"env": "prod"},
        "properties": {
            "connectivityStatus": status,
            "lastConnectivityTime": last,
            "agentVersion": "1.21.10",
            "kubernetesVersion": "1.29.2",
            "distribution": "k3s",
            "provisioningState": "Succeeded",
        },
    }


def flux_extension(cid: str, version: str = "1.17.2", auto: bool = True) -> dict[str, Any]:
    return {
        "id": f"{cid}/{KC}/extensions/flux",
        "type": "Microsoft.KubernetesConfiguration/extensions",
        "name": "flux",
        "properties": {
            "extensionType": "microsoft.flux",
            "autoUpgradeMinorVersion": auto,
            "releaseTrain": "Stable",
            "version": None if auto else version,
            "scope": {"cluster": {"releaseNamespace": "flux-system"}},
            "configurationSettings": {"multiTenancy.enforce": "true"},
            "currentVersion": version,
            "provisioningState": "Succeeded",
            "statuses": [],
            "isSystemExtension": False,
        },
    }


def flux_config(cid: str, name: str = "cluster-config") -> dict[str, Any]:
    return {
        "id": f"{cid}/{KC}/fluxConfigurations/{name}",
        "type": "Microsoft.KubernetesConfiguration/fluxConfigurations",
        "name": name,
        "properties": {
            "scope": "cluster",
            "namespace": name,
            "sourceKind": "GitRepository",
            "suspend": False,
            "gitRepository": {
                "url": GIT_URL,
                "timeoutInSeconds": 600,
                "syncIntervalInSeconds": 600,
                "repositoryRef": {"branch": "main", "tag": None, "semver": None, "commit": None},
            },
            "kustomizations": {
                "infra": {"name": "infra", "path": "./infrastructure", "prune": True},
            },
            "complianceState": "Compliant",
            "provisioningState": "Succeeded",
            "errorMessage": "",
        },
    }


def scc(cid: str, name: str = "legacy-v1") -> dict[str, Any]:
    return {
        "id": f"{cid}/{KC}/sourceControlConfigurations/{name}",
        "type": "Microsoft.KubernetesConfiguration/sourceControlConfigurations",
        "name": name,
        "properties": {
            "repositoryUrl": "git@github.com:contoso/legacy.git",
            "operatorNamespace": "flux",
            "operatorInstanceName": name,
            "operatorType": "Flux",
            "operatorScope": "cluster",
            "provisioningState": "Succeeded",
        },
    }


def build_fleet() -> dict[str, Any]:
    """A small fleet with one cluster of each situation the behaviours need.

    SUB1/rg-prod-weu-1: aks-prod-00001 (flux 1.17.2 + cluster-config), aks-prod-00002 (bare),
    aks-arm-00003 (ARM64), aks-stop-00004 (stopped), aks-prod-00005..00012 (bare, for paging),
    a virtual network. SUB1/rg-edge-weu-1: arc-edge-00001 (connected), arc-edge-00002
    (offline), arc-edge-00003 (expired), arc-v1-00004 (Flux v1). SUB2/rg-stg-weu-1: three AKS.
    """
    resources: list[dict[str, Any]] = [
        {
            "id": rg_id(SUB1, RG_PROD),
            "type": "Microsoft.Resources/resourceGroups",
            "name": RG_PROD,
            "location": "westeurope",
            "tags": {"env": "prod"},
        },
        {
            "id": rg_id(SUB1, RG_EDGE),
            "type": "Microsoft.Resources/resourceGroups",
            "name": RG_EDGE,
            "location": "westeurope",
            "tags": {},
        },
        {
            "id": rg_id(SUB2, RG_STG),
            "type": "Microsoft.Resources/resourceGroups",
            "name": RG_STG,
            "location": "eastus",
            "tags": {},
        },
    ]
    one = aks("aks-prod-00001")
    resources += [one, flux_extension(one["id"]), flux_config(one["id"])]
    resources.append(aks("aks-prod-00002"))
    resources.append(aks("aks-arm-00003", vm="Standard_D4ps_v5"))
    resources.append(aks("aks-stop-00004", power="Stopped"))
    resources += [aks(f"aks-prod-{i:05d}") for i in range(5, 13)]
    resources.append(
        {
            "id": f"{rg_id(SUB1, RG_PROD)}/providers/Microsoft.Network/virtualNetworks/vnet-1",
            "type": "Microsoft.Network/virtualNetworks",
            "name": "vnet-1",
            "location": "westeurope",
            "tags": {},
            "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
        }
    )
    resources.append(arc("arc-edge-00001"))
    resources.append(arc("arc-edge-00002", status="Offline", last="2026-11-15T10:00:00Z"))
    resources.append(arc("arc-edge-00003", status="Expired", last="2026-07-20T10:00:00Z"))
    v1 = arc("arc-v1-00004")
    resources += [v1, scc(v1["id"])]
    resources += [
        aks(f"aks-stg-{i:05d}", sub=SUB2, rg=RG_STG, tags={"env": "staging"}) for i in range(1, 4)
    ]
    return {
        "kind": "FleetSnapshot",
        "subscriptions": [
            {"subscriptionId": SUB1, "displayName": "prod-eu"},
            {"subscriptionId": SUB2, "displayName": "staging"},
        ],
        "extensionTypeVersions": copy.deepcopy(CATALOG),
        "resources": resources,
        "generator": {"seed": 0, "note": "hand-made test fleet"},
    }


# --------------------------------------------------------------------------- credentials


class FakeCredential:
    """A TokenCredential: ``get_token`` returns an ``AccessToken`` (nothing else is needed)."""

    def __init__(self, token: str = "fleet-emulator-test-token") -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)


def jwt(**claims: Any) -> str:
    """An unsigned JWT-looking token (the emulator never verifies signatures)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


# --------------------------------------------------------------------------- clients


def client_kwargs(emu: RunningEmulator, **extra: Any) -> dict[str, Any]:
    return {"base_url": emu.endpoint, "connection_verify": str(emu.ca_bundle), **extra}


def kc_client(
    emu: RunningEmulator, credential: Any = None, sub: str = SUB1, **extra: Any
) -> SourceControlConfigurationClient:
    return SourceControlConfigurationClient(
        credential or FakeCredential(), sub, **client_kwargs(emu, **extra)
    )


def flux_client(
    emu: RunningEmulator, sub: str = SUB1, **extra: Any
) -> KubernetesConfigurationFluxConfigurationsMgmtClient:
    """The fluxConfigurations 2025-04-01 client (its package's only api-version)."""
    return KubernetesConfigurationFluxConfigurationsMgmtClient(
        FakeCredential(), sub, **client_kwargs(emu, **extra)
    )


def extensions_client(
    emu: RunningEmulator, sub: str = SUB1, **extra: Any
) -> KubernetesConfigurationExtensionsMgmtClient:
    """The extensions 2025-03-01 client (its package's only api-version)."""
    return KubernetesConfigurationExtensionsMgmtClient(
        FakeCredential(), sub, **client_kwargs(emu, **extra)
    )


def rm_client(emu: RunningEmulator, sub: str = SUB1, **extra: Any) -> ResourceManagementClient:
    return ResourceManagementClient(FakeCredential(), sub, **client_kwargs(emu, **extra))


def graph_client(emu: RunningEmulator, credential: Any = None, **extra: Any) -> ResourceGraphClient:
    return ResourceGraphClient(credential or FakeCredential(), **client_kwargs(emu, **extra))


def sub_client(emu: RunningEmulator, **extra: Any) -> SubscriptionClient:
    return SubscriptionClient(FakeCredential(), **client_kwargs(emu, **extra))


#: Options that keep tests fast: no waiting between polls, one in-progress poll.
FAST = {"retry_after": 0, "lro_polls": 1, "reconcile_seconds": 0}
#: The emulator's tests page every list by 5 (Azure's page sizes would rarely cross a page in
#: fleets this small), so that every list of these tests is read over several pages.
PAGING = {"page_size": 5}

EmulatorFactory = Callable[..., AbstractContextManager[RunningEmulator]]


@pytest.fixture
def fleet() -> dict[str, Any]:
    return build_fleet()


@pytest.fixture
def start_emulator(fleet: dict[str, Any]) -> Iterator[EmulatorFactory]:
    """``with start_emulator(snapshot=None, **options) as emu:`` (defaults: FAST, the fleet)."""

    def start(snapshot: Any = None, **options: Any) -> AbstractContextManager[RunningEmulator]:
        return running_emulator(
            fleet if snapshot is None else snapshot, **{**FAST, **PAGING, **options}
        )

    yield start


@pytest.fixture
def emulator(fleet: dict[str, Any]) -> Iterator[RunningEmulator]:
    """The test fleet served with the fast options, paged by 5."""
    with running_emulator(fleet, **FAST, **PAGING) as emu:
        yield emu


@pytest.fixture
def kc(emulator: RunningEmulator) -> SourceControlConfigurationClient:
    return kc_client(emulator)


class Recorder:
    """A ``raw_response_hook``: keeps every response the SDK receives (polls included)."""

    def __init__(self) -> None:
        self.responses: list[Recorded] = []

    def __call__(self, pipeline_response: Any) -> None:
        http = pipeline_response.http_response
        if hasattr(http, "read"):
            http.read()  # an LRO's first response may still be streaming when the hook sees it
        text = http.text()
        self.responses.append(
            Recorded(
                method=http.request.method,
                url=http.request.url,
                status=http.status_code,
                headers={k.lower(): v for k, v in http.headers.items()},
                body=json.loads(text) if text else None,
            )
        )

    def clear(self) -> None:
        self.responses.clear()

    def of(self, method: str) -> list[Recorded]:
        return [r for r in self.responses if r.method == method]


@dataclass
class Recorded:
    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: Any


def recorded_client(
    emu: RunningEmulator, **extra: Any
) -> tuple[SourceControlConfigurationClient, Recorder]:
    recorder = Recorder()
    return kc_client(emu, raw_response_hook=recorder, **extra), recorder


def child_path(cluster: str, kind: str, name: str, **where: Any) -> str:
    """Id of a Microsoft.KubernetesConfiguration child of a cluster of the test fleet."""
    return f"{cluster_id(cluster, **where)}/{KC}/{kind}/{name}"

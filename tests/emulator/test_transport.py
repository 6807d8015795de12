"""Transport: HTTPS with a throwaway CA, bearer tokens, api-version, keep-alive, loopback, RBAC."""

from __future__ import annotations

import http.client
import ssl

import orjson
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from fleet.emulator.server import EmulatorServer, identity_of, is_loopback
from fleet.emulator.testing import RunningEmulator

from .conftest import AKS, GIT_URL, RG_PROD, SUB1, FakeCredential, cluster_id, jwt, kc_client

EXT_PATH = (
    f"{cluster_id('aks-prod-00001')}/providers/Microsoft.KubernetesConfiguration/extensions/flux"
)


def _conn(emu: RunningEmulator) -> http.client.HTTPSConnection:
    port = int(emu.endpoint.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(emu.ca_bundle))
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)


def _get(
    emu: RunningEmulator, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = _conn(emu)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def test_serves_https_only_with_its_own_ca(emulator: RunningEmulator) -> None:
    assert emulator.endpoint.startswith("https://127.0.0.1:")
    assert emulator.ca_bundle.read_text().startswith("-----BEGIN CERTIFICATE-----")
    # The SDK verifies the certificate: without the CA the call fails like against a stranger.
    client = kc_client(emulator, connection_verify=True, retry_total=0)
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        client.extensions.get(RG_PROD, AKS, "managedClusters", "aks-prod-00001", "flux")
    # Plain HTTP on the same port gets no HTTP answer at all.
    port = int(emulator.endpoint.rsplit(":", 1)[1])
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain.request("GET", f"{EXT_PATH}?api-version=2023-05-01")
        plain.getresponse().read()


def test_any_bearer_token_is_accepted_and_a_missing_one_is_401(emulator: RunningEmulator) -> None:
    status, _, body = _get(emulator, f"{EXT_PATH}?api-version=2023-05-01", {})
    assert status == 401
    assert orjson.loads(body)["error"]["code"] == "AuthenticationFailed"
    status, _, _ = _get(
        emulator, f"{EXT_PATH}?api-version=2023-05-01", {"Authorization": "Basic x"}
    )
    assert status == 401
    for token in ("anything", jwt(oid="11111111-aaaa", upn="ops@contoso.com")):
        status, headers, body = _get(
            emulator, f"{EXT_PATH}?api-version=2023-05-01", {"Authorization": f"Bearer {token}"}
        )
        assert status == 200
        assert orjson.loads(body)["name"] == "flux"
        assert headers["content-type"].startswith("application/json")
        assert headers["x-ms-request-id"]


def test_principal_is_the_jwt_subject_or_a_token_hash() -> None:
    assert identity_of(jwt(oid="abc", sub="def")).principal == "abc"
    assert identity_of(jwt(sub="def")).principal == "def"
    user = identity_of(jwt(oid="abc", upn="ops@contoso.com"))
    assert (user.display, user.kind) == ("ops@contoso.com", "User")
    app = identity_of(jwt(oid="abc", appid="app-1"))
    assert (app.display, app.kind) == ("app-1", "Application")
    opaque = identity_of("not-a-jwt")
    assert opaque.principal.startswith("sha256:") and "not-a-jwt" not in opaque.principal
    assert identity_of("not-a-jwt") == opaque
    assert identity_of("other").principal != opaque.principal


def test_api_version_is_required_and_must_be_one_the_type_serves(
    emulator: RunningEmulator,
) -> None:
    auth = {"Authorization": "Bearer t"}
    status, _, body = _get(emulator, EXT_PATH, auth)
    assert status == 400
    assert orjson.loads(body)["error"]["code"] == "MissingApiVersionParameter"
    for version in ("2023-05-01", "2025-03-01"):
        assert _get(emulator, f"{EXT_PATH}?api-version={version}", auth)[0] == 200
    # Query parameter names are matched without case, as ARM matches them.
    assert _get(emulator, f"{EXT_PATH}?api-Version=2025-03-01", auth)[0] == 200
    for version in ("2022-11-01", "2099-01-01-preview"):
        status, _, body = _get(emulator, f"{EXT_PATH}?api-version={version}", auth)
        error = orjson.loads(body)["error"]
        assert (status, error["code"]) == (400, "NoRegisteredProviderFound")
        assert "2023-05-01, 2025-03-01" in error["message"]


def test_provider_and_type_segments_are_case_insensitive(emulator: RunningEmulator) -> None:
    auth = {"Authorization": "Bearer t"}
    odd = EXT_PATH.replace(
        "Microsoft.ContainerService/managedClusters", "microsoft.containerservice/MANAGEDCLUSTERS"
    )
    odd = odd.replace(
        "Microsoft.KubernetesConfiguration/extensions",
        "MICROSOFT.KUBERNETESCONFIGURATION/Extensions",
    )
    odd = odd.replace("resourceGroups", "resourcegroups")
    status, _, body = _get(emulator, f"{odd}?api-version=2023-05-01", auth)
    assert status == 200
    assert orjson.loads(body)["id"] == EXT_PATH  # echoed in canonical case


def test_unknown_routes_and_methods_answer_arm_errors(emulator: RunningEmulator) -> None:
    auth = {"Authorization": "Bearer t"}
    status, _, body = _get(emulator, "/providers/Microsoft.Nope/things?api-version=1", auth)
    assert status == 404
    assert orjson.loads(body)["error"]["code"] == "InvalidResourceType"
    conn = _conn(emulator)
    conn.request("POST", f"{EXT_PATH}?api-version=2023-05-01", body=b"{}", headers=auth)
    resp = conn.getresponse()
    assert resp.status == 405
    assert orjson.loads(resp.read())["error"]["code"] == "MethodNotAllowed"


def test_keep_alive_reuses_one_connection(emulator: RunningEmulator) -> None:
    conn = _conn(emulator)
    sockets = set()
    for _ in range(20):
        conn.request(
            "GET", f"{EXT_PATH}?api-version=2023-05-01", headers={"Authorization": "Bearer t"}
        )
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("connection", "keep-alive").lower() != "close"
        resp.read()
        sockets.add(id(conn.sock))
    conn.close()
    assert len(sockets) == 1


def test_refuses_a_non_loopback_bind_unless_allowed(fleet: dict) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    with pytest.raises(ValueError, match="allow_remote"):
        EmulatorServer(fleet, host="0.0.0.0")
    # Explicit opt-in constructs (not started: tests never bind anything but loopback).
    assert EmulatorServer(fleet, host="0.0.0.0", allow_remote=True).options.allow_remote
    with pytest.raises(TypeError, match="no_such_option"):
        EmulatorServer(fleet, no_such_option=1)


def test_roles_restrict_a_principal_to_its_actions(emulator: RunningEmulator) -> None:
    reader = kc_client(emulator, FakeCredential(jwt(oid="reader-oid")))
    writer = kc_client(emulator, FakeCredential(jwt(oid="flux-writer")))
    other = kc_client(emulator, FakeCredential(jwt(oid="someone-else")))
    emulator.admin.set_role("reader-oid", ["Microsoft.KubernetesConfiguration/*/read"])
    emulator.admin.set_role(
        "flux-writer", ["Microsoft.KubernetesConfiguration/fluxConfigurations/*"]
    )
    config = models.FluxConfiguration(
        namespace="apps", git_repository=models.GitRepositoryDefinition(url=GIT_URL)
    )
    assert (
        reader.extensions.get(RG_PROD, AKS, "managedClusters", "aks-prod-00001", "flux").name
        == "flux"
    )
    with pytest.raises(HttpResponseError) as denied:
        reader.flux_configurations.begin_create_or_update(
            RG_PROD, AKS, "managedClusters", "aks-prod-00001", "apps", config
        )
    assert denied.value.status_code == 403
    assert denied.value.error is not None and denied.value.error.code == "AuthorizationFailed"
    assert "Microsoft.KubernetesConfiguration/fluxConfigurations/write" in str(denied.value)
    # A flux configuration that would install the extension also needs extensions/write.
    with pytest.raises(HttpResponseError) as needs_extension:
        writer.flux_configurations.begin_create_or_update(
            RG_PROD, AKS, "managedClusters", "aks-prod-00002", "apps", config
        )
    assert "Microsoft.KubernetesConfiguration/extensions/write" in str(needs_extension.value)
    # ... but where the extension exists, the flux writer may write.
    done = writer.flux_configurations.begin_create_or_update(
        RG_PROD, AKS, "managedClusters", "aks-prod-00001", "apps", config, polling_interval=0
    ).result()
    assert done.provisioning_state == "Succeeded"
    # Principals without an entry are not restricted; "*" restricts them too.
    assert other.extensions.get(RG_PROD, AKS, "managedClusters", "aks-prod-00001", "flux")
    emulator.admin.set_role("*", [])
    with pytest.raises(HttpResponseError, match="AuthorizationFailed"):
        other.extensions.get(RG_PROD, AKS, "managedClusters", "aks-prod-00001", "flux")
    emulator.admin.clear_roles()
    assert other.extensions.get(RG_PROD, AKS, "managedClusters", "aks-prod-00001", "flux")
    assert SUB1 in done.id

"""The emulator's fault machinery that the fault suite adds: expired tokens are refused like
ARM refuses them, ``malformed`` damages answers in each documented way, and a restart from a
dump carries the operations still in flight (same ids, same outcome)."""

from __future__ import annotations

import base64
import http.client
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from fleet.emulator import snapshot as snap
from fleet.emulator.faults import MALFORMED_MODES, FaultSpecError, malform, parse_fault
from fleet.emulator.server import client_ssl_context
from fleet.emulator.testing import RunningEmulator
from tests.faults.conftest import Emulator, facts_of


def jwt(**claims: Any) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def raw_get(emu: RunningEmulator, path: str, token: str) -> tuple[int, dict[str, str], bytes]:
    host, port = emu.endpoint.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(
        host, int(port), context=client_ssl_context(emu.ca_bundle), timeout=10
    )
    try:
        sep = "&" if "?" in path else "?"
        conn.request(
            "GET",
            f"{path}{sep}api-version=2023-05-01",
            headers={"Authorization": f"Bearer {token}"},
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_a_token_past_its_exp_is_refused_with_a_challenge(emulator_factory: Any) -> None:
    emu = emulator_factory().running
    status, _, _ = raw_get(emu, "/subscriptions", jwt(oid="a", exp=int(time.time()) + 60))
    assert status == 200
    status, headers, body = raw_get(emu, "/subscriptions", jwt(oid="a", exp=int(time.time()) - 5))
    assert status == 401
    assert orjson.loads(body)["error"]["code"] == "ExpiredAuthenticationToken"
    challenge = {k.lower(): v for k, v in headers.items()}["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    # a token without exp (the emulator credential's) never expires; opaque tokens neither
    assert raw_get(emu, "/subscriptions", jwt(oid="a"))[0] == 200
    assert raw_get(emu, "/subscriptions", "opaque-token")[0] == 200


def test_the_sdk_sees_an_expired_token_as_an_authentication_error(
    emulator_factory: Any, fleet_snapshot: dict[str, Any]
) -> None:
    emu = emulator_factory().running

    class Expired:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(jwt(oid="x", exp=int(time.time()) - 1), int(time.time()) + 3600)

    cluster = next(iter(facts_of(fleet_snapshot).values()))
    client = SourceControlConfigurationClient(
        Expired(),
        cluster.subscription_id,
        base_url=emu.endpoint,
        connection_verify=str(emu.ca_bundle),
        retry_total=0,
    )
    with pytest.raises(ClientAuthenticationError, match="ExpiredAuthenticationToken"):
        list(
            client.extensions.list(
                cluster.resource_group,
                "Microsoft.ContainerService",
                "managedClusters",
                cluster.name,
            )
        )


PAGE: dict[str, Any] = {
    "value": [
        {
            "id": "/s/x/extensions/flux",
            "name": "flux",
            "properties": {
                "extensionType": "microsoft.flux",
                "provisioningState": "Succeeded",
                "autoUpgradeMinorVersion": True,
                "configurationSettings": {"a": "b"},
                "statuses": [],
                "powerState": {"code": "Running"},
            },
        },
    ]
}


def test_each_malformed_mode_damages_the_answer_as_documented() -> None:
    body = orjson.dumps(PAGE)
    assert malform(body, "truncated") == body[: len(body) // 2]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(malform(body, "truncated"))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(malform(body, "not_json"))
    [item] = orjson.loads(malform(body, "missing_fields"))["value"]
    assert "id" not in item and "properties" not in item and item["name"] == "flux"
    [item] = orjson.loads(malform(body, "nulls"))["value"]
    assert set(item["properties"].values()) == {None}
    [item] = orjson.loads(malform(body, "unknown_enum"))["value"]
    assert item["properties"]["provisioningState"] == "Frobnicated"
    assert item["properties"]["powerState"] == {"code": "Frobnicated"}
    assert item["properties"]["extensionType"] == "microsoft.flux"
    [item] = orjson.loads(malform(body, "wrong_types"))["value"]
    props = item["properties"]
    assert props["extensionType"] == 12345 and props["autoUpgradeMinorVersion"] == "yes"
    assert props["configurationSettings"] == ["not", "an", "object"]
    huge = malform(body, "huge", 100_000)
    assert len(huge) > 100_000
    [item] = orjson.loads(huge)["value"]
    assert item["properties"]["extensionType"] == "microsoft.flux"  # valid, just big
    assert PAGE["value"][0]["properties"]["provisioningState"] == "Succeeded"  # not mutated


def test_malformed_fault_specs_are_validated() -> None:
    assert parse_fault({"action": "malformed", "mode": "nulls"}).mode == "nulls"
    for mode in MALFORMED_MODES:
        assert parse_fault({"action": "malformed", "mode": mode}).to_json()["mode"] == mode
    with pytest.raises(FaultSpecError, match="mode: must be one of"):
        parse_fault({"action": "malformed"})
    with pytest.raises(FaultSpecError, match="mode: must be one of"):
        parse_fault({"action": "malformed", "mode": "sideways"})
    with pytest.raises(FaultSpecError, match="only a malformed fault has a mode"):
        parse_fault({"action": "error", "mode": "nulls"})
    with pytest.raises(FaultSpecError, match="sizeBytes"):
        parse_fault({"action": "malformed", "mode": "huge", "sizeBytes": 0})


def test_a_malformed_fault_damages_only_successful_answers_it_matches(
    emulator_factory: Any, fleet_snapshot: dict[str, Any]
) -> None:
    emu = emulator_factory().running
    cluster = next(iter(facts_of(fleet_snapshot).values()))
    path = f"{cluster.id}/providers/Microsoft.KubernetesConfiguration/extensions"
    emu.admin.add_fault(action="malformed", mode="not_json", pathPrefix=path, count=1)
    missing = f"{cluster.id}/providers/Microsoft.KubernetesConfiguration/extensions/absent"
    status, _, body = raw_get(emu, missing, "t")
    assert status == 404 and orjson.loads(body)["error"]["code"] == "ResourceNotFound"
    status, _, body = raw_get(emu, path, "t")
    assert status == 200 and body.startswith(b"<html>")
    status, _, body = raw_get(emu, path, "t")  # count 1: the next answer is whole again
    assert status == 200 and "value" in orjson.loads(body)
    assert emu.admin.stats()["faultsInjected"]["byAction"] == {"malformed": 1}


def test_operations_in_flight_survive_a_restart(
    emulator_factory: Any, fleet_snapshot: dict[str, Any]
) -> None:
    """A write accepted before the restart polls to its end after it, under the same
    operation id, and the flux configuration still reconciles."""
    emu: Emulator = emulator_factory(lro_polls=None, lro_seconds=2, reconcile_seconds=1)
    running = emu.running
    cluster = next(
        c for c in facts_of(fleet_snapshot).values() if c.cluster_type == "managedClusters"
    )

    class Token:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(jwt(oid="restart-test"), int(time.time()) + 3600)

    client = SourceControlConfigurationClient(
        Token(),
        cluster.subscription_id,
        base_url=running.endpoint,
        connection_verify=str(running.ca_bundle),
    )
    poller = client.flux_configurations.begin_create_or_update(
        cluster.resource_group,
        "Microsoft.ContainerService",
        "managedClusters",
        cluster.name,
        "apps",
        models.FluxConfiguration(
            namespace="apps",
            git_repository=models.GitRepositoryDefinition(url="https://example.com/apps.git"),
        ),
        polling_interval=0.2,
    )
    state = emu.stop()
    [op] = state["emulator"]["operations"]
    assert op["resourceId"].endswith("/fluxConfigurations/apps") and op["status"] == "Creating"
    assert snap.validate(state) == []
    running = emu.start(state)
    result = poller.result(timeout=30)
    assert result.provisioning_state == "Succeeded"
    time.sleep(1.2)
    after = emu.stop()
    [config] = [r for r in after["resources"] if r["id"].endswith("/fluxConfigurations/apps")]
    assert config["properties"]["complianceState"] == "Compliant"
    assert "operations" not in after["emulator"] and "reconciling" not in after["emulator"]


def test_a_dump_without_work_in_flight_is_the_snapshot_itself(
    emulator_factory: Any, fleet_snapshot: dict[str, Any]
) -> None:
    emu: Emulator = emulator_factory()
    assert emu.stop() == orjson.loads(orjson.dumps(fleet_snapshot))


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"operations": {}}, "emulator.operations: must be a list"),
        ({"operations": [1]}, "emulator.operations[0]: must be an object"),
        ({"operations": [{"id": "x"}]}, "emulator.operations[0]: 'resourceId' must be"),
        (
            {
                "operations": [
                    {
                        "id": "x",
                        "resourceId": "/nope",
                        "kind": "extensions",
                        "action": "create",
                        "status": "Creating",
                        "startTime": "yesterday",
                    }
                ]
            },
            "'startTime' must be an ISO 8601 time",
        ),
        (
            {"reconciling": [{"resourceId": "/nope", "target": "Compliant", "due": "2026-01-01"}]},
            "emulator.reconciling[0]: 'resourceId' must be a flux configuration",
        ),
        ({"reconciling": [{"target": "Sideways"}]}, "'target' must be Compliant"),
    ],
)
def test_in_flight_sections_are_validated(
    section: dict[str, Any], expected: str, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    doc = {**fleet_snapshot, "emulator": {**fleet_snapshot.get("emulator", {}), **section}}
    path = tmp_path / "fleet.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(snap.SnapshotError) as caught:
        snap.load(path)
    assert any(expected in issue for issue in caught.value.issues), caught.value.issues

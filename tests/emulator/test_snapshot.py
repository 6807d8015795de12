"""The fleet snapshot: validation with clear errors, exact round trip, secrets never stored."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from fleet.emulator import snapshot as snap
from fleet.emulator.generate import generate

from .conftest import AKS, GIT_URL, RG_PROD, EmulatorFactory, child_path, kc_client

SECRET = "s3cr3t-t0ken-value"


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(doc))
    return path


def test_load_reports_each_problem_with_its_place(tmp_path: Path, fleet: dict[str, Any]) -> None:
    broken = copy.deepcopy(fleet)
    del broken["resources"][12]["id"]
    broken["resources"][3]["type"] = "Microsoft.Kubernetes/connectedClusters"
    broken["resources"][4]["tags"] = {"env": 1}
    broken["resources"].append(copy.deepcopy(broken["resources"][5]))
    broken["resources"].append(
        {
            "id": child_path("ghost", "extensions", "flux"),
            "type": "Microsoft.KubernetesConfiguration/extensions",
            "name": "flux",
        }
    )
    broken["emulator"] = {"faults": [{"action": "explode"}], "extra": 1}
    with pytest.raises(snap.SnapshotError) as caught:
        snap.load(_write(tmp_path, broken))
    issues = caught.value.issues
    n = len(broken["resources"])
    assert "fleet.json: resources[12]: missing 'id'" in issues
    assert any(
        i.startswith("fleet.json: resources[3].type: 'Microsoft.Kubernetes/connectedClusters'")
        for i in issues
    )
    assert "fleet.json: resources[4].tags: tag values must be strings" in issues
    assert any(i.startswith(f"fleet.json: resources[{n - 2}].id: duplicate id") for i in issues)
    assert any(i.startswith(f"fleet.json: resources[{n - 1}].id: parent cluster") for i in issues)
    assert any(
        i.startswith("fleet.json: emulator.faults[0]: action: must be one of") for i in issues
    )
    assert "fleet.json: emulator.extra: unknown key (expected faults, failingSources)" in issues


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "the snapshot must be a JSON object"),
        ({"kind": "Other", "subscriptions": [], "resources": []}, "kind: must be 'FleetSnapshot'"),
        ({"kind": "FleetSnapshot", "resources": []}, "subscriptions: missing or not a list"),
        (
            {"kind": "FleetSnapshot", "subscriptions": [{}], "resources": []},
            "subscriptions[0]: missing 'subscriptionId'",
        ),
        (
            {
                "kind": "FleetSnapshot",
                "subscriptions": [],
                "resources": [{"id": "/x", "type": "t", "name": "n"}],
            },
            "resources[0].id: not an ARM resource id: '/x'",
        ),
        (
            {
                "kind": "FleetSnapshot",
                "subscriptions": [],
                "resources": [],
                "extensionTypeVersions": {"microsoft.flux": {"Stable": "1.0"}},
            },
            "extensionTypeVersions.microsoft.flux.Stable: must be a list of version strings",
        ),
    ],
)
def test_shape_errors(doc: Any, message: str) -> None:
    assert f"snapshot: {message}" in snap.validate(doc)


def test_unreadable_or_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(snap.SnapshotError, match=r"missing\.json: cannot read"):
        snap.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(snap.SnapshotError, match=r"bad\.json: not JSON"):
        snap.load(bad)


def test_round_trip_is_exact_including_unknown_keys(
    tmp_path: Path, fleet: dict[str, Any], start_emulator: EmulatorFactory
) -> None:
    fleet["emulator"] = {
        "faults": [
            {
                "id": "f1",
                "action": "delay",
                "delaySeconds": 0.01,
                "pathRegex": "never-matches-anything",
            }
        ],
        "failingSources": ["https://example.com/broken.git"],
    }
    fleet["x-custom"] = {"kept": [1, 2, {"as": "is"}]}
    path = _write(tmp_path, fleet)
    with start_emulator(path) as emu:
        assert emu.admin.snapshot() == json.loads(path.read_text())


def test_round_trip_of_a_generated_fleet(start_emulator: EmulatorFactory) -> None:
    generated = generate(clusters=60, subscriptions=2, seed=11)
    original = orjson.loads(orjson.dumps(generated))
    with start_emulator(generated) as emu:
        assert emu.admin.snapshot() == original


def test_dump_follows_writes(start_emulator: EmulatorFactory, fleet: dict[str, Any]) -> None:
    with start_emulator(fleet) as emu:
        kc = kc_client(emu)
        kc.extensions.begin_delete(
            RG_PROD, AKS, "managedClusters", "aks-prod-00001", "flux", force_delete=True
        ).result()
        kc.flux_configurations.begin_create_or_update(
            RG_PROD,
            AKS,
            "managedClusters",
            "aks-prod-00001",
            "apps",
            models.FluxConfiguration(
                namespace="apps", git_repository=models.GitRepositoryDefinition(url=GIT_URL)
            ),
            polling_interval=0,
        ).result()
        dumped = emu.admin.snapshot()
    ids = [r["id"] for r in dumped["resources"]]
    before = [r["id"] for r in fleet["resources"]]
    flux_id = child_path("aks-prod-00001", "extensions", "flux")
    # The extension was deleted and then re-installed by the flux PUT: it is now at the end.
    assert ids[: len(before) - 1] == [i for i in before if i != flux_id]
    assert ids[-2:] == [
        flux_id,
        child_path("aks-prod-00001", "fluxConfigurations", "apps"),
    ]
    assert dumped["generator"] == fleet["generator"]


def test_secrets_are_blanked_everywhere(
    start_emulator: EmulatorFactory, fleet: dict[str, Any]
) -> None:
    # A snapshot that (wrongly) carries secrets loads with them blanked.
    fleet["resources"][5]["properties"]["configurationProtectedSettings"] = {
        "sshPrivateKey": SECRET
    }
    fleet["resources"][5]["properties"]["azureBlob"] = {"url": "https://x", "accountKey": SECRET}
    with start_emulator(fleet) as emu:
        kc = kc_client(emu)
        config = models.FluxConfiguration(
            namespace="apps",
            git_repository=models.GitRepositoryDefinition(url=GIT_URL, https_user="git"),
            configuration_protected_settings={"httpsKey": SECRET},
        )
        created = kc.flux_configurations.begin_create_or_update(
            RG_PROD, AKS, "managedClusters", "aks-prod-00002", "apps", config, polling_interval=0
        ).result()
        assert created.configuration_protected_settings == {"httpsKey": ""}
        ext = kc.extensions.begin_create(
            RG_PROD,
            AKS,
            "managedClusters",
            "aks-prod-00005",
            "flux",
            models.Extension(
                extension_type="microsoft.flux", configuration_protected_settings={"token": SECRET}
            ),
            polling_interval=0,
        ).result()
        assert ext.configuration_protected_settings == {"token": ""}
        dumped = json.dumps(emu.admin.snapshot())
        log = emu.admin.requests()
    assert SECRET not in dumped
    assert '"sshPrivateKey": ""' in dumped and '"accountKey": ""' in dumped
    assert SECRET not in json.dumps(log)
    puts = [e for e in log if e["method"] == "PUT"]
    assert len(puts) == 2 and all(len(e["bodySha256"]) == 64 for e in puts)


def test_resource_type_of_ids() -> None:
    assert snap.resource_type_of("/subscriptions/s/resourceGroups/rg") == (
        "Microsoft.Resources/resourceGroups",
        "rg",
    )
    assert snap.resource_type_of(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c"
        "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/f"
    ) == ("Microsoft.KubernetesConfiguration/fluxConfigurations", "f")
    assert snap.resource_type_of(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
    ) == ("Microsoft.Network/virtualNetworks/subnets", "a")
    assert snap.resource_type_of("/subscriptions/s") is None
    assert snap.resource_type_of("/subscriptions/s/resourceGroups/rg/providers/X") is None

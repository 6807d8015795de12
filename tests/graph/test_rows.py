"""Graph rows to ARM JSON, and the rules that decide when a row is not trusted (pure)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleet.azure.graph_quota import parse_duration
from fleet.azure.graph_rows import (
    canonical_properties,
    child_json,
    incomplete_child,
    incomplete_cluster,
)
from fleet.core.ids import EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS
from fleet.observe import essence

CID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"
KC = f"{CID}/providers/Microsoft.KubernetesConfiguration"

FLUX = {
    "scope": "cluster",
    "namespace": "cluster-config",
    "sourceKind": "GitRepository",
    "gitRepository": {
        "url": "https://example/repo",
        "repositoryRef": {"branch": "main"},
        "syncIntervalInSeconds": 600,
    },
    "kustomizations": {"Apps": {"path": "./apps", "dependsOn": ["infra"], "prune": True}},
    "configurationProtectedSettings": {"httpsKey": ""},
    "statuses": [{"name": "x", "complianceState": "Compliant", "statusConditions": []}],
    "complianceState": "Compliant",
    "provisioningState": "Succeeded",
}


def pascal(value: Any) -> Any:
    """PascalCase every key except user-chosen ones (kustomization names, settings keys)."""
    if isinstance(value, list):
        return [pascal(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if k in ("kustomizations", "configurationProtectedSettings", "configurationSettings"):
            out[k[0].upper() + k[1:]] = {name: pascal(item) for name, item in v.items()}
        else:
            out[k[0].upper() + k[1:]] = pascal(v)
    return out


def test_pascal_case_rows_get_arm_spelling_back() -> None:
    row = {"id": f"{KC}/fluxConfigurations/cc", "name": "cc", "properties": pascal(FLUX)}
    resource = child_json(row, FLUX_CONFIGURATIONS)
    assert resource["properties"] == FLUX  # user keys ("Apps", "httpsKey") untouched
    assert essence.flux_configuration(resource) == essence.flux_configuration(
        {"name": "cc", "properties": FLUX}
    )


def test_canonical_rows_are_returned_as_they_are() -> None:
    props = copy.deepcopy(FLUX)
    assert canonical_properties(FLUX_CONFIGURATIONS, props) is props
    ext = {"extensionType": "microsoft.flux", "configurationSettings": {"A.b": "1"}}
    assert canonical_properties(EXTENSIONS, ext) is ext


def test_unknown_keys_survive_and_extension_settings_keep_their_keys() -> None:
    props = {
        "ExtensionType": "microsoft.flux",
        "ConfigurationSettings": {"multiTenancy.enforce": "true"},
        "SomethingNew": {"Deep": 1},
        "Scope": {"Cluster": {"ReleaseNamespace": "flux-system"}},
    }
    out = canonical_properties(EXTENSIONS, props)
    assert out == {
        "extensionType": "microsoft.flux",
        "configurationSettings": {"multiTenancy.enforce": "true"},
        "SomethingNew": {"Deep": 1},
        "scope": {"cluster": {"releaseNamespace": "flux-system"}},
    }


def test_child_json_has_the_arm_shape() -> None:
    row = {
        "id": f"{KC}/extensions/flux",
        "name": "flux",
        "type": "microsoft.kubernetesconfiguration/extensions",
        "properties": {"extensionType": "microsoft.flux", "provisioningState": "Succeeded"},
        "identity": {"type": "SystemAssigned"},
        "plan": None,
    }
    out = child_json(row, EXTENSIONS)
    assert out == {
        "id": row["id"],
        "name": "flux",
        "type": "Microsoft.KubernetesConfiguration/extensions",
        "properties": row["properties"],
        "identity": {"type": "SystemAssigned"},
    }
    assert child_json({"id": f"{KC}/extensions/x"}, EXTENSIONS)["name"] == "x"


@pytest.mark.parametrize(
    ("ctype", "props", "reason"),
    [
        ("managedClusters", {"powerState": {"code": "Running"}}, None),
        (
            "managedClusters",
            {"powerState": {"code": "Stopped"}, "provisioningState": "Succeeded"},
            None,
        ),
        ("managedClusters", {}, "no properties"),
        ("managedClusters", None, "no properties"),
        ("managedClusters", {"kubernetesVersion": "1.30"}, "no powerState"),
        (
            "managedClusters",
            {"powerState": {"code": "Running"}, "provisioningState": "Upgrading"},
            "is Upgrading",
        ),
        ("connectedClusters", {"connectivityStatus": "Offline"}, None),
        ("connectedClusters", {"distribution": "k3s"}, "no connectivityStatus"),
        (
            "connectedClusters",
            {"connectivityStatus": "Connected", "provisioningState": "Provisioning"},
            "is Provisioning",
        ),
    ],
)
def test_cluster_rows_that_cannot_be_trusted(ctype: str, props: Any, reason: str | None) -> None:
    found = incomplete_cluster({"id": CID, "properties": props}, ctype)
    assert (found is None) if reason is None else (found is not None and reason in found)


@pytest.mark.parametrize(
    ("ctype", "props", "reason"),
    [
        (EXTENSIONS, {"extensionType": "microsoft.flux", "provisioningState": "Succeeded"}, None),
        (EXTENSIONS, {"extensionType": "microsoft.flux", "provisioningState": "Failed"}, None),
        (
            EXTENSIONS,
            {"extensionType": "microsoft.flux", "provisioningState": "Creating"},
            "is Creating",
        ),
        (EXTENSIONS, {"provisioningState": "Succeeded"}, "no extensionType"),
        (EXTENSIONS, {"extensionType": "microsoft.flux"}, "no provisioningState"),
        (EXTENSIONS, None, "no properties"),
        (
            FLUX_CONFIGURATIONS,
            {"provisioningState": "Succeeded", "complianceState": "Pending"},
            None,
        ),
        (FLUX_CONFIGURATIONS, {"provisioningState": "Updating"}, "is Updating"),
        (FLUX_CONFIGURATIONS, {"scope": "cluster"}, "no provisioningState"),
        (SOURCE_CONTROL_CONFIGURATIONS, {"provisioningState": "Succeeded"}, None),
        (SOURCE_CONTROL_CONFIGURATIONS, {"provisioningState": "Deleting"}, "is Deleting"),
    ],
)
def test_child_rows_that_cannot_be_trusted(ctype: str, props: Any, reason: str | None) -> None:
    found = incomplete_child({"id": f"{KC}/x/n", "name": "n", "type": ctype, "properties": props})
    assert (found is None) if reason is None else (found is not None and reason in found)


def test_quota_durations() -> None:
    assert parse_duration("00:00:05") == 5
    assert parse_duration("00:01:02.5") == 62.5
    assert parse_duration("1.00:00:01") == 86401
    assert parse_duration("soon") is None
    assert parse_duration("") is None

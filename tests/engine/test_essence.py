"""Essence: ARM defaults are not drift, read-only noise and secrets disappear."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fleet.core.diffing import diff
from fleet.observe import essence
from tests.engine.fixtures import CLUSTER_CONFIG, aks, extension_json, flux_json

#: Copies of the 2023-05-01 spec examples (see data/README.md).
EXAMPLES = Path(__file__).parent / "data"


def _example(name: str) -> dict[str, Any]:
    path = EXAMPLES / name
    body: dict[str, Any] = json.loads(path.read_text())["responses"]["200"]["body"]
    return body


def test_spec_example_extension_keeps_only_writable_fields() -> None:
    body = _example("GetExtension.json")
    ess = essence.extension(body)
    assert ess == {
        "name": "ClusterMonitor",
        "properties": {
            "extensionType": "azuremonitor-containers",
            "autoUpgradeMinorVersion": False,
            "releaseTrain": "Preview",
            "version": "0.1.4",
            "scope": {"cluster": {"releaseNamespace": "kube-system"}},
            "configurationSettings": {
                "omsagent.secret.wsid": "a38cef99-5a89-52ed-b6db-22095c23664b",
                "omsagent.env.clusterName": "clusterName1",
            },
        },
    }


def test_spec_example_flux_configuration_fills_defaults_and_drops_status() -> None:
    ess = essence.flux_configuration(_example("GetFluxConfiguration.json"))["properties"]
    assert set(ess) == {
        "scope",
        "namespace",
        "sourceKind",
        "suspend",
        "gitRepository",
        "kustomizations",
    }
    assert ess["gitRepository"]["repositoryRef"] == {"branch": "master"}
    k1 = ess["kustomizations"]["srs-kustomization1"]
    # Absent prune/force are filled with ARM's defaults; the read-only name disappears.
    assert k1["prune"] is False and k1["force"] is False and "name" not in k1
    assert k1["postBuild"]["substituteFrom"] == [
        {"kind": "ConfigMap", "name": "cluster-test", "optional": True}
    ]


def test_minimal_desired_body_equals_a_full_observed_resource() -> None:
    facts = aks()
    observed = flux_json(facts.id, CLUSTER_CONFIG)
    desired = {
        "properties": {k: v for k, v in copy.deepcopy(CLUSTER_CONFIG).items() if k != "name"}
    }
    assert diff(essence.flux_configuration(desired), essence.flux_configuration(observed)) == []


def test_flux_defaults_null_absent_and_empty_are_alike() -> None:
    minimal = {"properties": {"gitRepository": {"url": "https://x"}, "kustomizations": {"k": {}}}}
    spelled: dict[str, Any] = {
        "properties": {
            "scope": "Cluster",
            "namespace": "default",
            "sourceKind": "gitrepository",
            "suspend": None,
            "bucket": None,
            "azureBlob": None,
            "gitRepository": {
                "url": "https://x",
                "timeoutInSeconds": 600,
                "syncIntervalInSeconds": None,
                "repositoryRef": {"branch": None, "tag": None},
            },
            "kustomizations": {
                "k": {
                    "name": "k",
                    "path": "",
                    "dependsOn": None,
                    "prune": False,
                    "force": None,
                    "wait": True,
                    "timeoutInSeconds": 600,
                    "postBuild": {"substitute": None, "substituteFrom": []},
                }
            },
            "configurationProtectedSettings": {"sshPrivateKey": ""},
            "waitForReconciliation": True,
            "reconciliationWaitDuration": "PT5M",
            "statuses": [{"complianceState": "Compliant"}],
            "errorMessage": "",
        }
    }
    assert essence.flux_configuration(minimal) == essence.flux_configuration(spelled)


def test_depends_on_is_a_set() -> None:
    a = {"properties": {"kustomizations": {"x": {"dependsOn": ["b", "a"]}}}}
    b = {"properties": {"kustomizations": {"x": {"dependsOn": ["a", "b", "a"]}}}}
    assert essence.flux_configuration(a) == essence.flux_configuration(b)
    empty = essence.flux_configuration({"properties": {"kustomizations": {"x": {}}}})
    assert empty["properties"]["kustomizations"]["x"]["dependsOn"] == []


def test_bucket_and_blob_defaults_and_secrets() -> None:
    bucket = essence.flux_configuration(
        {"properties": {"sourceKind": "Bucket", "bucket": {"url": "u", "bucketName": "b"}}}
    )["properties"]["bucket"]
    assert bucket == {
        "url": "u",
        "bucketName": "b",
        "insecure": False,  # secure by default (docs/security.md), not ARM's swagger true
        "timeoutInSeconds": 600,
        "syncIntervalInSeconds": 600,
    }
    blob = essence.flux_configuration(
        {
            "properties": {
                "azureBlob": {
                    "url": "u",
                    "containerName": "c",
                    "accountKey": "",
                    "sasToken": "s",
                    "servicePrincipal": {
                        "clientId": "id",
                        "clientSecret": "",
                        "clientCertificate": None,
                    },
                }
            }
        }
    )["properties"]["azureBlob"]
    assert blob == {
        "url": "u",
        "containerName": "c",
        "timeoutInSeconds": 600,
        "syncIntervalInSeconds": 600,
        "servicePrincipal": {"clientId": "id", "clientCertificateSendChain": False},
    }


def test_extension_defaults_case_and_version_rule() -> None:
    observed = extension_json(
        aks().id, extensionType="Microsoft.Flux", releaseTrain="stable", version="1.17.3"
    )
    ess = essence.extension(observed, governed_settings=["multiTenancy.enforce", "absent"])
    assert ess["properties"] == {
        "extensionType": "microsoft.flux",
        "autoUpgradeMinorVersion": True,
        "releaseTrain": "Stable",
        # version is dropped: with auto-upgrade on it is not governed
        "scope": {"cluster": {"releaseNamespace": "flux-system"}},
        "configurationSettings": {"multiTenancy.enforce": "true"},
    }
    minimal = essence.extension({"properties": {"extensionType": "microsoft.flux"}})
    assert minimal["properties"] == {
        "extensionType": "microsoft.flux",
        "autoUpgradeMinorVersion": True,
        "releaseTrain": "Stable",
        "scope": {"cluster": {"releaseNamespace": "flux-system"}},
    }
    pinned = essence.extension(
        {"properties": {"autoUpgradeMinorVersion": False, "version": "1.16.3"}}
    )
    assert pinned["properties"]["version"] == "1.16.3"


def test_extension_ungoverned_settings_are_dropped_only_when_asked() -> None:
    observed = extension_json(aks().id, settings={"useKubeletIdentity": "true"})
    assert essence.extension(observed)["properties"]["configurationSettings"] == {
        "multiTenancy.enforce": "true",
        "useKubeletIdentity": "true",
    }
    assert (
        "configurationSettings"
        not in essence.extension(observed, governed_settings=[])["properties"]
    )


def test_read_only_noise_is_gone() -> None:
    text = json.dumps(essence.extension(extension_json(aks().id)))
    for noise in (
        "provisioningState",
        "currentVersion",
        "statuses",
        "systemData",
        "isSystemExtension",
        "aksAssignedIdentity",
        "identity",
        "errorInfo",
    ):
        assert noise not in text
    text = json.dumps(essence.flux_configuration(flux_json(aks().id, CLUSTER_CONFIG)))
    for noise in (
        "complianceState",
        "repositoryPublicKey",
        "sourceSyncedCommitId",
        "statusUpdatedAt",
        "sourceUpdatedAt",
        "errorMessage",
        "statuses",
        "configurationProtectedSettings",
    ):
        assert noise not in text


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "text",
        3,
        [1, 2],
        {"properties": "x"},
        {"properties": [1]},
        {"properties": {"scope": 7}},
    ],
)
def test_unexpected_shapes_never_raise(garbage: Any) -> None:
    essence.extension(garbage)
    essence.flux_configuration(garbage)
    weird = {
        "properties": {
            "kustomizations": {"k": "x", "j": {"dependsOn": "a", "postBuild": 5}},
            "gitRepository": [1],
            "scope": None,
            "extensionType": 5,
            "configurationSettings": [1],
        }
    }
    essence.extension(weird)
    assert essence.flux_configuration(weird)["properties"]["kustomizations"]["k"] == "x"


def test_is_flux_extension_is_case_insensitive() -> None:
    assert essence.is_flux_extension({"properties": {"extensionType": "Microsoft.Flux"}})
    assert not essence.is_flux_extension({"properties": {"extensionType": "microsoft.dapr"}})
    assert not essence.is_flux_extension({"properties": None})


def test_oci_defaults_and_tls_secrets() -> None:
    """2025-04-01 OCI source: ARM's defaults filled, tlsConfig (all secrets) never governed."""
    oci = essence.flux_configuration(
        {
            "properties": {
                "sourceKind": "ocirepository",
                "ociRepository": {
                    "url": "oci://r/app",
                    "repositoryRef": {"tag": None, "semver": ">=1.0.0", "digest": None},
                    "layerSelector": {"mediaType": None, "operation": None},
                    "verify": {
                        "provider": "cosign",
                        "matchOidcIdentity": [
                            {"issuer": "b", "subject": "y"},
                            {"issuer": "a", "subject": "x"},
                        ],
                        "verificationConfig": None,
                    },
                    "tlsConfig": {"clientCertificate": "", "privateKey": None},
                    "futureField": 1,
                },
            }
        }
    )["properties"]
    assert oci["sourceKind"] == "OCIRepository"
    assert oci["ociRepository"] == {
        "url": "oci://r/app",
        "repositoryRef": {"semver": ">=1.0.0"},
        "verify": {
            "provider": "cosign",
            "matchOidcIdentity": [{"issuer": "a", "subject": "x"}, {"issuer": "b", "subject": "y"}],
        },
        "insecure": False,
        "useWorkloadIdentity": False,
        "timeoutInSeconds": 600,
        "syncIntervalInSeconds": 600,
    }


def test_git_provider_absent_is_generic_in_any_case() -> None:
    def git(**extra: object) -> object:
        body = {"properties": {"gitRepository": {"url": "https://x", **extra}}}
        return essence.flux_configuration(body)["properties"]["gitRepository"]["provider"]

    assert git() == git(provider=None) == git(provider="generic") == "Generic"
    assert git(provider="AZURE") == "Azure"

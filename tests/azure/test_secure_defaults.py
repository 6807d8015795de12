"""Secure defaults and new source shapes end to end: the SDK against the emulator (issue 13).

A TLS bucket created as the Azure CLI creates it (``insecure: false`` in the body) complies
with a policy that leaves ``insecure`` out; a bucket created without ``insecure`` (ARM fills
its swagger default, true) is drift whose fix, sent through the SDK, is ``insecure: false``;
and a cluster whose only flux configuration is an ``OCIRepository`` one (2025-04-01) that no
policy names is judged: ``noncompliant`` with ``EXTENSION_MISSING``, not ``READ_ERROR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet.azure import apply
from fleet.azure.observe import observe
from fleet.azure.session import AzureSession
from fleet.core.clusters import facts_from_arm
from fleet.core.vocabulary import Code, State
from fleet.emulator.testing import running_emulator
from fleet.evaluate.versions import Catalog
from fleet.plan.actions import Action, ActionKind
from fleet.plan.pipeline import judge
from tests.emulator.conftest import CATALOG, FAST, SUB1, aks, flux_extension, rg_id
from tests.engine.fixtures import NOW, applicable, policy
from tests.graph.conftest import settings_for

RG = "rg-prod-weu-1"
CLUSTER = aks("aks-secure-00001")
KC = "providers/Microsoft.KubernetesConfiguration"
TRAINS = Catalog.from_mapping(CATALOG["microsoft.flux"])
S3 = "https://s3.eu-west-1.amazonaws.com"


def _snapshot(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "FleetSnapshot",
        "subscriptions": [{"subscriptionId": SUB1, "displayName": "one"}],
        "extensionTypeVersions": CATALOG,
        "resources": [
            {
                "id": rg_id(SUB1, RG),
                "type": "Microsoft.Resources/resourceGroups",
                "name": RG,
                "location": "westeurope",
                "tags": {},
            },
            CLUSTER,
            *resources,
        ],
    }


def _put(session: AzureSession, name: str, properties: dict[str, Any]) -> None:
    rid = f"{CLUSTER['id']}/{KC}/fluxConfigurations/{name}"
    action = Action(
        kind=ActionKind.PUT_FLUX_CONFIG,
        cluster_id=CLUSTER["id"],
        resource_id=rid,
        method="PUT",
        body={"properties": properties},
    )
    outcome = apply.apply(session, action, timeout=30)
    assert outcome.succeeded, outcome.error


def _bucket(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "scope": "cluster",
        "namespace": name,
        "sourceKind": "Bucket",
        "bucket": {"url": S3, "bucketName": "manifests", **extra},
        "kustomizations": {"apps": {"path": "./apps"}},
    }


def _policy(*names: str) -> Any:
    return policy(
        "objects",
        extension={"name": "flux"},
        fluxConfigurations=[
            {
                "name": n,
                "namespace": n,
                "bucket": {"url": S3, "bucketName": "manifests"},
                "kustomizations": {"apps": {"path": "./apps"}},
            }
            for n in names
        ],
    )


def test_cli_and_arm_defaulted_buckets_against_a_policy_without_insecure(tmp_path: Path) -> None:
    with (
        running_emulator(_snapshot([flux_extension(CLUSTER["id"])]), **FAST) as emu,
        AzureSession(settings_for(emu, tmp_path)) as session,
    ):
        # az k8s-configuration flux create --kind bucket sends insecure: false by default
        _put(session, "cli-bucket", _bucket("cli-bucket", insecure=False))
        # a template that leaves it out gets ARM's swagger default, true
        _put(session, "arm-bucket", _bucket("arm-bucket"))
        facts = facts_from_arm(CLUSTER)
        seen = observe(session, facts)
        stored = {
            c["name"]: c["properties"]["bucket"]["insecure"] for c in seen.flux_configurations
        }
        assert stored == {"cli-bucket": False, "arm-bucket": True}  # the emulator is ARM's

        result = judge(
            seen, applicable(_policy("cli-bucket", "arm-bucket")), catalog=TRAINS, now=NOW
        )
        assert result.verdict.state == State.NONCOMPLIANT
        drift = [
            (f.resource.rsplit("/", 1)[-1], f.path, f.desired, f.actual)
            for f in result.verdict.findings
            if f.code is Code.FLUX_CONFIG_DRIFT
        ]
        assert drift == [("arm-bucket", "/properties/bucket/insecure", False, True)]
        [put] = [a for a in result.plan.actions if a.kind is ActionKind.PUT_FLUX_CONFIG]
        assert put.resource_id.endswith("/arm-bucket")
        assert put.body is not None and put.body["properties"]["bucket"]["insecure"] is False

        # the fix goes through the SDK; read again, both buckets are TLS and comply
        assert apply.apply(session, put, timeout=30).succeeded
        again = judge(
            observe(session, facts),
            applicable(_policy("cli-bucket", "arm-bucket")),
            catalog=TRAINS,
            now=NOW,
        )
        assert again.verdict.state == State.COMPLIANT, again.verdict.findings
        assert again.plan.actions == []


OCI_CONFIG = {
    # GetFluxConfiguration of 2025-04-01 for an OCI source; the extension it needs was removed
    # (ARM installs one when a configuration is created, so the shape comes from a snapshot)
    "id": f"{CLUSTER['id']}/{KC}/fluxConfigurations/podinfo",
    "type": "Microsoft.KubernetesConfiguration/fluxConfigurations",
    "name": "podinfo",
    "properties": {
        "scope": "cluster",
        "namespace": "podinfo",
        "sourceKind": "OCIRepository",
        "suspend": False,
        "ociRepository": {
            "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
            "repositoryRef": {"tag": "latest"},
            "serviceAccountName": "podinfo",
            "insecure": False,
            "useWorkloadIdentity": False,
            "timeoutInSeconds": 600,
            "syncIntervalInSeconds": 600,
        },
        "kustomizations": {"podinfo": {"name": "podinfo", "path": "./"}},
        "complianceState": "Compliant",
        "provisioningState": "Succeeded",
        "errorMessage": "",
    },
}


def test_an_oci_configuration_and_no_extension_is_noncompliant(tmp_path: Path) -> None:
    with (
        running_emulator(_snapshot([OCI_CONFIG]), **FAST) as emu,
        AzureSession(settings_for(emu, tmp_path)) as session,
    ):
        seen = observe(session, facts_from_arm(CLUSTER))
    assert seen.read_error is None and seen.extensions == ()
    [config] = seen.flux_configurations
    assert config["properties"]["sourceKind"] == "OCIRepository"
    baseline = policy("platform-baseline", extension={"name": "flux"})
    result = judge(seen, applicable(baseline), catalog=TRAINS, now=NOW)
    assert result.verdict.state == State.NONCOMPLIANT
    codes = {f.code for f in result.verdict.findings}
    assert codes == {Code.EXTENSION_MISSING, Code.FLUX_CONFIG_UNMANAGED}

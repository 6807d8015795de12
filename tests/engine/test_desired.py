"""Rendering: key-by-key extension merge, whole-object flux merge, overrides and conflicts."""

from __future__ import annotations

import gc
from datetime import date
from typing import Any

import pytest

from fleet.desired import render as render_module
from fleet.desired.flux import flux_body
from fleet.desired.render import clear_cache, render
from fleet.desired.state import WINDOW_PATH, DesiredState
from fleet.evaluate.versions import DEFAULT_WINDOW
from fleet.policy.models import Exemption, Policy
from tests.engine.fixtures import (
    BASELINE_BODY,
    CLUSTER_CONFIG,
    TEAM_ALPHA,
    aks,
    applicable,
    baseline,
    cluster_config,
    policy,
    shared_tenancy,
    version_audit,
)

FACTS = aks()
EXT = f"{FACTS.id}/providers/Microsoft.KubernetesConfiguration/extensions/flux"
CC = f"{FACTS.id}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/cluster-config"


def test_extension_body_and_owners() -> None:
    desired = render(applicable(baseline(), version_audit()), FACTS)
    ext = desired.extension
    assert ext is not None
    assert ext.body == BASELINE_BODY
    assert ext.name == "flux" and ext.resource == EXT and ext.name_governed
    assert ext.settings == {"multiTenancy.enforce"}
    assert ext.owners_of("/properties/releaseTrain") == ("platform-baseline",)
    assert ext.owners_of("/properties/scope/cluster/releaseNamespace") == (
        "flux-version-audit",
        "platform-baseline",
    )
    # The audit policy's higher priority wins the window; the baseline's loss is visible.
    assert ext.version_window == 1 and ext.window_owners == ("flux-version-audit",)
    [override] = desired.overrides
    assert (
        override.resource,
        override.path,
        override.winner,
        override.loser,
        override.winner_value,
        override.loser_value,
    ) == (EXT, WINDOW_PATH, "flux-version-audit", "platform-baseline", 1, 2)
    assert desired.modes == {"platform-baseline": "enforce", "flux-version-audit": "audit"}
    assert desired.enforce == ("platform-baseline",) and desired.audit == ("flux-version-audit",)
    assert desired.conflicts == ()


def test_extension_settings_merge_key_by_key() -> None:
    low = policy(
        "low",
        priority=10,
        extension={
            "configurationSettings": {"a": "low", "b": "low-only"},
            "releaseTrain": "Preview",
        },
    )
    high = policy("high", priority=20, extension={"configurationSettings": {"a": "high"}})
    ext = render(applicable(low, high), FACTS).extension
    assert ext is not None
    assert ext.body["properties"]["configurationSettings"] == {"a": "high", "b": "low-only"}
    assert ext.body["properties"]["releaseTrain"] == "Preview"
    assert ext.owners_of("/properties/configurationSettings/a") == ("high",)
    assert ext.owners_of("/properties/configurationSettings/b") == ("low",)


def test_equal_priority_same_value_is_co_owned_not_a_conflict() -> None:
    a = policy("a", priority=5, extension={"releaseTrain": "stable"})
    b = policy("b", priority=5, extension={"releaseTrain": "Stable"})
    desired = render(applicable(a, b), FACTS)
    assert desired.conflicts == () and desired.overrides == ()
    assert desired.extension is not None
    assert desired.extension.owners_of("/properties/releaseTrain") == ("a", "b")


def test_equal_priority_different_value_is_a_conflict_and_ungoverned() -> None:
    desired = render(applicable(baseline(), shared_tenancy()), FACTS)
    [conflict] = desired.conflicts
    assert conflict.resource == EXT
    assert conflict.path == "/properties/configurationSettings/multiTenancy.enforce"
    assert conflict.policies == ("platform-baseline", "shared-tenancy")
    assert dict(conflict.values) == {"platform-baseline": "true", "shared-tenancy": "false"}
    ext = desired.extension
    assert ext is not None and "configurationSettings" not in ext.body["properties"]
    assert ext.conflict_paths == (conflict.path,)


def test_pinned_version_loses_to_higher_auto_upgrade() -> None:
    pin = policy(
        "pin", priority=1, extension={"autoUpgradeMinorVersion": False, "version": "1.16.3"}
    )
    auto = policy("auto", priority=9, extension={"autoUpgradeMinorVersion": True})
    desired = render(applicable(pin, auto), FACTS)
    ext = desired.extension
    assert ext is not None and not ext.pinned and "version" not in ext.body["properties"]
    assert {(o.path, o.winner, o.loser) for o in desired.overrides} == {
        ("/properties/autoUpgradeMinorVersion", "auto", "pin"),
        ("/properties/version", "auto", "pin"),
    }
    alone = render(applicable(pin), FACTS)
    assert alone.pinned and alone.extension is not None and alone.extension.version == "1.16.3"


def test_flux_configs_merge_whole_objects_by_priority() -> None:
    other = dict(CLUSTER_CONFIG, gitRepository={"url": "https://example.com/other"})
    low = policy("low", priority=1, fluxConfigurations=[other])
    desired = render(applicable(cluster_config(), low), FACTS)
    config = desired.flux_configurations["cluster-config"]
    assert config.policies == ("cluster-config",) and config.mode == "enforce"
    git = config.body["properties"]["gitRepository"]
    assert git["url"].endswith("flux2-kustomize-helm-example")
    # Whole object: the winner's body, nothing of the loser's merged in.
    assert "repositoryRef" in config.body["properties"]["gitRepository"]
    paths = {o.path for o in desired.overrides}
    assert "/properties/gitRepository/url" in paths
    assert "/properties/gitRepository/repositoryRef" in paths
    assert all(o.winner == "cluster-config" and o.loser == "low" for o in desired.overrides)


def test_flux_configs_equal_priority_different_bodies_conflict() -> None:
    other = dict(CLUSTER_CONFIG, namespace="elsewhere")
    rival = policy("rival", priority=50, fluxConfigurations=[other])
    desired = render(applicable(cluster_config(), rival), FACTS)
    [conflict] = desired.conflicts
    assert (conflict.resource, conflict.path) == (CC, "/properties/namespace")
    assert dict(conflict.values) == {"cluster-config": "cluster-config", "rival": "elsewhere"}
    config = desired.flux_configurations["cluster-config"]
    assert config.conflict_paths == ("/properties/namespace",)
    assert config.policies == ("cluster-config", "rival")


def test_spelled_out_defaults_are_not_a_disagreement() -> None:
    spelled = dict(
        CLUSTER_CONFIG,
        suspend=False,
        gitRepository=dict(CLUSTER_CONFIG["gitRepository"], timeoutInSeconds=600),
    )
    twin = policy("twin", priority=50, mode="audit", fluxConfigurations=[spelled])
    desired = render(applicable(cluster_config(), twin), FACTS)
    assert desired.conflicts == () and desired.overrides == ()
    config = desired.flux_configurations["cluster-config"]
    assert config.policies == ("cluster-config", "twin") and config.mode == "enforce"


def test_audit_only_owner_makes_the_config_audit() -> None:
    audit = policy("watch", mode="audit", fluxConfigurations=[TEAM_ALPHA])
    desired = render(applicable(audit), FACTS)
    assert desired.flux_configurations["team-alpha"].mode == "audit"


def test_flux_body_moves_secrets_to_references_and_infers_the_kind() -> None:
    spec = policy(
        "p",
        fluxConfigurations=[
            {
                "name": "blob",
                "azureBlob": {
                    "url": "https://a.blob.core.windows.net",
                    "containerName": "c",
                    "accountKey": {"fromEnv": "KEY"},
                    "servicePrincipal": {"clientId": "id", "clientSecret": {"fromFile": "/run/sp"}},
                },
                "configurationProtectedSettings": {"token": {"fromEnv": "TOKEN"}},
            }
        ],
    ).spec.flux_configurations[0]
    body, protected = flux_body(spec)
    props = body["properties"]
    assert props["sourceKind"] == "AzureBlob"
    assert "accountKey" not in props["azureBlob"]
    assert props["azureBlob"]["servicePrincipal"] == {"clientId": "id"}
    assert "configurationProtectedSettings" not in props and "name" not in props
    assert protected == {
        "token": "env:TOKEN",
        "/azureBlob/accountKey": "env:KEY",
        "/azureBlob/servicePrincipal/clientSecret": "file:/run/sp",
    }
    bucket = policy(
        "q", fluxConfigurations=[{"name": "b", "bucket": {"url": "https://s3", "bucketName": "x"}}]
    ).spec.flux_configurations[0]
    assert flux_body(bucket)[0]["properties"]["sourceKind"] == "Bucket"


def test_exempt_policies_do_not_contribute_but_are_listed() -> None:
    ex = Exemption.model_validate({"cluster": "*", "reason": "lab", "expiresOn": "2099-12-31"})
    desired = render(
        applicable(baseline(), cluster_config(), exempt={"platform-baseline": ex}), FACTS
    )
    assert desired.extension is None and desired.policies == ("cluster-config",)
    [exempt] = desired.exempt
    assert (exempt.name, exempt.reason, exempt.expires_on) == (
        "platform-baseline",
        "lab",
        date(2099, 12, 31),
    )
    assert desired.version_window == DEFAULT_WINDOW
    # A configuration of an exempt policy still counts as managed.
    ex_cc = render(applicable(cluster_config(), exempt={"cluster-config": ex}), FACTS)
    assert "cluster-config" in ex_cc.declared_names and not ex_cc.flux_configurations


def test_render_is_cached_per_policy_set_but_bound_per_cluster() -> None:
    policies = applicable(baseline(), cluster_config())
    a = render(policies, aks("aks-a"))
    b = render(policies, aks("aks-b"))
    assert a.extension is not None and b.extension is not None
    assert a.extension.body is b.extension.body  # shared template
    assert a.extension.resource.endswith(
        "aks-a/providers/Microsoft.KubernetesConfiguration/extensions/flux"
    )
    assert b.flux_configurations["cluster-config"].resource.startswith(aks("aks-b").id)


def _train_policy(train: str) -> Policy:
    return policy("train", extension={"autoUpgradeMinorVersion": True, "releaseTrain": train})


def _train(desired: DesiredState) -> Any:
    assert desired.extension is not None
    return desired.extension.body["properties"]["releaseTrain"]


def test_two_different_policies_never_share_a_template_even_when_the_first_is_freed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The template cache is keyed by content, not by object identity. CPython reuses the
    address (``id``) of a freed object for the next one, but not reliably enough to test on;
    here every object gets the same id, as if each landed where the freed one was."""
    monkeypatch.setattr(render_module, "id", lambda _obj: 4096, raising=False)
    first = _train_policy("Stable")
    assert _train(render(applicable(first), FACTS)) == "Stable"
    clear_cache()  # the cache holds the policies it built from: let the first one go
    del first
    gc.collect()
    second = _train_policy("Preview")
    assert _train(render(applicable(second), FACTS)) == "Preview"
    # And while both live, each still gets its own.
    third = _train_policy("Stable")
    assert _train(render(applicable(third), FACTS)) == "Stable"
    assert _train(render(applicable(second), FACTS)) == "Preview"


def test_policies_with_equal_content_share_a_template() -> None:
    a = render(applicable(_train_policy("Stable")), FACTS).extension
    b = render(applicable(_train_policy("Stable")), FACTS).extension
    assert a is not None and b is not None and a.body is b.body


def test_remediation_flags_and_empty_set() -> None:
    desired = render(applicable(baseline(deleteUnmanaged=True, migrateFluxV1=True)), FACTS)
    flags = desired.flags["platform-baseline"]
    assert flags.delete_unmanaged and flags.migrate_flux_v1
    assert not flags.recreate_on_immutable_change
    empty = render([], FACTS)
    assert empty.policies == () and empty.extension is None and not empty.flux_configurations


def test_oci_tls_secrets_are_protected_references_never_in_the_body() -> None:
    oci = policy(
        "o",
        fluxConfigurations=[
            {
                "name": "podinfo",
                "ociRepository": {
                    "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
                    "repositoryRef": {"digest": "sha256:" + "a" * 64},
                    "tlsConfig": {
                        "privateKey": {"fromEnv": "OCI_KEY"},
                        "caCertificate": {"fromKeyVault": {"vault": "kv-p", "name": "oci-ca"}},
                    },
                },
            }
        ],
    )
    body, protected = flux_body(oci.spec.flux_configurations[0])
    props = body["properties"]
    assert props["sourceKind"] == "OCIRepository"
    assert "tlsConfig" not in props["ociRepository"]
    assert props["ociRepository"]["insecure"] is False
    assert set(protected) == {
        "/ociRepository/tlsConfig/privateKey",
        "/ociRepository/tlsConfig/caCertificate",
    }
    assert "OCI_KEY" in protected["/ociRepository/tlsConfig/privateKey"]

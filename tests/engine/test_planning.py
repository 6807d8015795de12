"""Planning: action order, the guard of every remediation flag, audit mode and conflicts."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from fleet.core.vocabulary import Code
from fleet.desired.fingerprints import Fingerprints, fingerprint
from fleet.observe.observed import ObservedCluster
from fleet.plan.actions import EXTENSION_RECREATED, ActionKind, ClusterPlan, Reason
from fleet.plan.planning import observed_digest
from tests.engine import fixtures as fx

F = fx.aks()


run = fx.judged


def kinds(plan: ClusterPlan) -> list[tuple[str, str, str]]:
    return [(a.kind.value, a.change, a.resource_id.rsplit("/", 1)[-1]) for a in plan.actions]


def skipped(plan: ClusterPlan) -> list[tuple[str, str]]:
    return [(s.code, s.reason) for s in plan.skipped]


def changed(spec: dict[str, Any], **props: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    spec.update(props)
    return spec


def test_compliant_cluster_has_an_empty_plan() -> None:
    plan = run(fx.compliant(F, fx.CLUSTER_CONFIG), fx.baseline(), fx.cluster_config()).plan
    assert plan.actions == [] and plan.skipped == [] and not plan.changes
    assert plan.observed_digest.startswith("sha256:")


def test_every_flag_at_once_gives_the_documented_order() -> None:
    renamed = fx.extension_json(F.id, name="flux-old")
    observed = fx.observe(
        F,
        extensions=[renamed],
        configs=[
            fx.flux_json(F.id, changed(fx.CLUSTER_CONFIG, namespace="old-ns")),
            fx.flux_json(F.id, fx.EDGE_BASELINE),
        ],
        v1=[fx.flux_v1_json(F.id)],
    )
    flags = {"migrateFluxV1": True, "deleteUnmanaged": True, "recreateOnImmutableChange": True}
    plan = run(observed, fx.baseline(**flags), fx.cluster_config(**flags)).plan
    assert kinds(plan) == [
        ("delete_flux_v1", "-", "legacy-v1"),
        ("delete_flux_config", "-", "cluster-config"),
        ("delete_flux_config", "-", "edge-baseline"),
        ("delete_extension", "-", "flux-old"),
        ("put_extension", "+", "flux"),
        ("put_flux_config", "+", "cluster-config"),
    ]
    assert plan.skipped == []
    put = plan.actions[-1]
    assert put.method == "PUT" and put.body is not None
    assert put.body["properties"]["namespace"] == "cluster-config"
    assert "FLUX_CONFIG_DRIFT /properties/namespace" in [str(r) for r in put.reasons]
    assert plan.actions[0].policies == ["cluster-config", "platform-baseline"]


def test_flux_v1_without_migration_is_skipped_and_blocks_the_install() -> None:
    plan = run(fx.observe(F, v1=[fx.flux_v1_json(F.id)]), fx.baseline(), fx.cluster_config()).plan
    assert plan.actions == []
    assert ("FLUX_V1_PRESENT", "Flux v1 present; set remediation.migrateFluxV1 to delete it") in (
        skipped(plan)
    )
    assert {code for code, _ in skipped(plan)} == {
        "FLUX_V1_PRESENT",
        "EXTENSION_MISSING",
        "FLUX_CONFIG_MISSING",
    }


def test_flux_v1_migration_needs_an_enforce_policy() -> None:
    audit = fx.policy(
        "audit-migrate", mode="audit", extension={}, remediation={"migrateFluxV1": True}
    )
    plan = run(fx.observe(F, v1=[fx.flux_v1_json(F.id)]), audit, fx.cluster_config()).plan
    assert not [a for a in plan.actions if a.kind is ActionKind.DELETE_FLUX_V1]
    migrate = run(
        fx.observe(F, v1=[fx.flux_v1_json(F.id)]),
        fx.baseline(migrateFluxV1=True),
        fx.cluster_config(),
    ).plan
    assert kinds(migrate) == [
        ("delete_flux_v1", "-", "legacy-v1"),
        ("put_extension", "+", "flux"),
        ("put_flux_config", "+", "cluster-config"),
    ]


def test_missing_extension_is_created_with_the_full_desired_body() -> None:
    plan = run(fx.observe(F), fx.baseline(), fx.version_audit()).plan
    [put] = plan.actions
    assert (put.kind, put.change, put.method) == (ActionKind.PUT_EXTENSION, "+", "PUT")
    assert put.body == fx.BASELINE_BODY
    assert put.policies == ["platform-baseline"]  # the audit policy never writes
    assert {"path": "/properties/releaseTrain", "desired": "Stable", "actual": None} in put.changes
    assert put.reasons == [Reason(code=Code.EXTENSION_MISSING)]


def test_audit_only_findings_are_skipped() -> None:
    audit_ext = fx.policy(
        "watch",
        mode="audit",
        extension={"releaseTrain": "Stable"},
        fluxConfigurations=[fx.CLUSTER_CONFIG],
    )
    plan = run(fx.observe(F), audit_ext).plan
    assert plan.actions == []
    assert set(skipped(plan)) == {
        ("EXTENSION_MISSING", "audit mode"),
        ("FLUX_CONFIG_MISSING", "audit mode"),
    }


def test_extension_update_keeps_what_no_enforce_policy_owns() -> None:
    observed = fx.compliant(
        F,
        fx.CLUSTER_CONFIG,
        releaseTrain="Preview",
        settings={"multiTenancy.enforce": "false", "useKubeletIdentity": "true", "audited": "x"},
    )
    watch = fx.policy(
        "watch", mode="audit", priority=500, extension={"configurationSettings": {"audited": "y"}}
    )
    plan = run(observed, fx.baseline(), fx.cluster_config(), watch).plan
    [put] = plan.actions
    assert (put.kind, put.change) == (ActionKind.PUT_EXTENSION, "~")
    assert put.resource_id == observed.extensions[0]["id"]
    assert put.body is not None
    assert put.body["properties"]["configurationSettings"] == {
        "multiTenancy.enforce": "true",
        "useKubeletIdentity": "true",
        "audited": "x",
    }
    assert put.body["properties"]["releaseTrain"] == "Stable"
    assert "version" not in put.body["properties"]
    assert [c["path"] for c in put.changes] == [
        "/properties/configurationSettings/multiTenancy.enforce",
        "/properties/releaseTrain",
    ]
    assert ("EXTENSION_DRIFT", "audit mode (/properties/configurationSettings/audited)") in (
        skipped(plan)
    )


def test_failed_extension_is_re_put() -> None:
    plan = run(
        fx.compliant(F, fx.CLUSTER_CONFIG, provisioningState="Failed"),
        fx.baseline(),
        fx.cluster_config(),
    ).plan
    [put] = plan.actions
    assert (put.kind, put.change) == (ActionKind.PUT_EXTENSION, "~")
    assert put.reasons == [Reason(code=Code.EXTENSION_FAILED, path="/properties/provisioningState")]


def test_extension_rename_needs_recreate() -> None:
    observed = fx.compliant(F, fx.CLUSTER_CONFIG, name="flux-old", releaseTrain="Preview")
    plan = run(observed, fx.baseline(), fx.cluster_config()).plan
    # The create-only name is left alone; the train is fixed in place, under the old name.
    assert kinds(plan) == [("put_extension", "~", "flux-old")]
    assert plan.actions[0].body is not None
    assert plan.actions[0].body["properties"]["releaseTrain"] == "Stable"
    assert skipped(plan) == [
        (
            "EXTENSION_DRIFT",
            "create-only field differs (/name); set "
            "remediation.recreateOnImmutableChange to delete and recreate it",
        )
    ]
    plan = run(observed, fx.baseline(recreateOnImmutableChange=True), fx.cluster_config()).plan
    # Deleting the extension removes the configurations: they are re-PUT after it.
    assert kinds(plan) == [
        ("delete_extension", "-", "flux-old"),
        ("put_extension", "+", "flux"),
        ("put_flux_config", "~", "cluster-config"),
    ]
    assert plan.actions[-1].reasons == [EXTENSION_RECREATED]


def test_flux_config_drift_is_a_full_body_put() -> None:
    observed = fx.observe(F, configs=[fx.flux_json(F.id, changed(fx.CLUSTER_CONFIG, suspend=True))])
    plan = run(observed, fx.cluster_config()).plan
    [put] = plan.actions
    assert (put.kind, put.change) == (ActionKind.PUT_FLUX_CONFIG, "~")
    assert put.body is not None
    props = put.body["properties"]
    assert props["gitRepository"]["url"] == fx.CLUSTER_CONFIG["gitRepository"]["url"]
    assert props["kustomizations"]["apps"]["dependsOn"] == ["infra"]
    assert "suspend" not in props  # the policy leaves it to ARM's default (false)
    assert put.changes == [{"path": "/properties/suspend", "desired": False, "actual": True}]


def test_flux_config_namespace_change_needs_recreate() -> None:
    spec = changed(fx.CLUSTER_CONFIG, namespace="old", suspend=True)
    observed = fx.observe(F, configs=[fx.flux_json(F.id, spec)])
    plan = run(observed, fx.cluster_config()).plan
    [put] = plan.actions
    assert put.change == "~" and put.body is not None
    assert put.body["properties"]["namespace"] == "old"  # a PUT cannot change it
    assert put.changes == [{"path": "/properties/suspend", "desired": False, "actual": True}]
    assert skipped(plan) == [
        (
            "FLUX_CONFIG_DRIFT",
            "create-only field differs "
            "(/properties/namespace); set remediation.recreateOnImmutableChange"
            " to delete and recreate it",
        )
    ]
    plan = run(observed, fx.cluster_config(recreateOnImmutableChange=True)).plan
    assert kinds(plan) == [
        ("delete_flux_config", "-", "cluster-config"),
        ("put_flux_config", "+", "cluster-config"),
    ]
    assert plan.actions[1].body is not None
    assert plan.actions[1].body["properties"]["namespace"] == "cluster-config"


def test_unmanaged_configs_are_deleted_only_with_delete_unmanaged() -> None:
    observed = fx.observe(
        F, configs=[fx.flux_json(F.id, fx.CLUSTER_CONFIG), fx.flux_json(F.id, fx.EDGE_BASELINE)]
    )
    plan = run(observed, fx.cluster_config()).plan
    assert plan.actions == []
    assert skipped(plan) == [
        (
            "FLUX_CONFIG_UNMANAGED",
            "not declared by any policy; set remediation.deleteUnmanaged to delete it",
        )
    ]
    plan = run(observed, fx.cluster_config(deleteUnmanaged=True)).plan
    [delete] = plan.actions
    assert (delete.kind, delete.method, delete.change) == (
        ActionKind.DELETE_FLUX_CONFIG,
        "DELETE",
        "-",
    )
    assert delete.resource_id.endswith("/edge-baseline") and delete.body is None
    assert {"path": "/properties/namespace", "desired": None, "actual": "edge-system"} in (
        delete.changes
    )
    audit = fx.policy("audit", mode="audit", remediation={"deleteUnmanaged": True})
    plan = run(observed, fx.cluster_config(), audit).plan
    assert plan.actions == [] and skipped(plan) == [("FLUX_CONFIG_UNMANAGED", "audit mode")]


def test_conflicting_resources_are_never_written() -> None:
    observed = fx.compliant(F, releaseTrain="Preview")
    plan = run(observed, fx.baseline(), fx.shared_tenancy(), fx.cluster_config()).plan
    # The extension is in conflict: nothing on it; the missing configuration is still created.
    assert kinds(plan) == [("put_flux_config", "+", "cluster-config")]
    reasons = dict(skipped(plan))
    assert reasons["EXTENSION_DRIFT"].startswith("policy conflict")
    assert reasons["POLICY_CONFLICT"].startswith(
        "policy conflict on /properties/configurationSettings/multiTenancy.enforce"
    )


def test_unreachable_stopped_and_unreadable_clusters_get_no_actions() -> None:
    offline = fx.arc(status="Offline", last=fx.NOW - timedelta(days=3))
    for observed, code in [
        (fx.observe(offline), "CLUSTER_UNREACHABLE"),
        (fx.observe(fx.aks(power="Stopped")), "CLUSTER_STOPPED"),
        (fx.observe(F, read_error="HTTP 500"), "READ_ERROR"),
    ]:
        plan = run(observed, fx.baseline(), fx.cluster_config()).plan
        assert plan.actions == []
        [skip] = plan.skipped
        assert skip.code == code and skip.resource_id == observed.facts.id
        assert "retry" in skip.reason


def test_version_out_of_window_alone_is_not_an_action() -> None:
    plan = run(
        fx.compliant(F, fx.CLUSTER_CONFIG, current="1.15.2"), fx.baseline(), fx.cluster_config()
    ).plan
    assert plan.actions == []
    assert [code for code, _ in skipped(plan)] == ["EXTENSION_VERSION_OUT_OF_WINDOW"]


def test_a_pin_below_the_arm64_floor_is_never_written() -> None:
    pin = fx.policy("pin", extension={"autoUpgradeMinorVersion": False, "version": "1.6.3"})
    plan = run(fx.observe(fx.aks(arm64=True)), pin).plan
    assert plan.actions == []
    assert (
        "EXTENSION_MISSING",
        "the policy pins a version ARM64 clusters cannot run; fix the policy first",
    ) in skipped(plan)


def test_noncompliant_alone_is_skipped() -> None:
    observed = fx.observe(
        F, configs=[fx.flux_json(F.id, fx.CLUSTER_CONFIG, complianceState="Non-Compliant")]
    )
    plan = run(observed, fx.cluster_config()).plan
    assert plan.actions == [] and [c for c, _ in skipped(plan)] == ["FLUX_CONFIG_NONCOMPLIANT"]


def test_secret_rotation_is_a_put_with_references_and_fingerprints_only() -> None:
    spec = changed(fx.CLUSTER_CONFIG, configurationProtectedSettings={"httpsKey": {"fromEnv": "T"}})
    observed = fx.observe(F, configs=[fx.flux_json(F.id, fx.CLUSTER_CONFIG)])
    cid = observed.flux_configurations[0]["id"].lower()
    fps = Fingerprints(
        desired={"env:T": fingerprint(b"k", "new")},
        applied={cid: {"httpsKey": fingerprint(b"k", "old")}},
    )
    plan = run(observed, fx.policy("cc", fluxConfigurations=[spec]), fingerprints=fps).plan
    [put] = plan.actions
    assert put.protected == {"httpsKey": "env:T"}
    assert put.body is not None and "configurationProtectedSettings" not in put.body["properties"]
    assert put.changes == [
        {
            "path": "/properties/configurationProtectedSettings/httpsKey",
            "desired": fingerprint(b"k", "new")[:20],
            "actual": fingerprint(b"k", "old")[:20],
        }
    ]
    # A create shows the secret as a reference to resolve, never a value.
    created = run(fx.observe(F), fx.policy("cc", fluxConfigurations=[spec]), fingerprints=fps).plan
    assert created.actions[0].protected == {"httpsKey": "env:T"}


def test_a_key_vault_rotation_is_re_put_unless_arm_still_holds_a_write() -> None:
    """Extension and flux configuration alike: a pending rotation plans a PUT carrying the
    reference; while the resource shows a write in progress, the rotation alone is skipped."""
    kv = {"fromKeyVault": {"vault": "kv-platform", "name": "token"}}
    ref = "keyvault:kv-platform/token"
    spec = changed(fx.CLUSTER_CONFIG, configurationProtectedSettings={"httpsKey": kv})
    ext_spec = {"name": "flux", "configurationProtectedSettings": {"telemetry": kv}}
    p = fx.policy("cc", fluxConfigurations=[spec], extension=ext_spec)

    def planned(**state: Any) -> ClusterPlan:
        observed = fx.observe(
            F,
            extensions=[fx.extension_json(F.id, **state)],
            configs=[fx.flux_json(F.id, fx.CLUSTER_CONFIG, **state)],
        )
        ext_id = observed.extensions[0]["id"].lower()
        cc_id = observed.flux_configurations[0]["id"].lower()
        old, new = fingerprint(b"k", "v1", "aaa"), fingerprint(b"k", "v2", "bbb")
        fps = Fingerprints(
            desired={ref: new},
            applied={ext_id: {"telemetry": old}, cc_id: {"httpsKey": old}},
        )
        return run(observed, p, fingerprints=fps).plan

    plan = planned()
    assert kinds(plan) == [
        ("put_extension", "~", "flux"),
        ("put_flux_config", "~", "cluster-config"),
    ]
    assert {r.code for a in plan.actions for r in a.reasons} == {Code.SECRET_ROTATION_PENDING}
    assert [a.protected for a in plan.actions] == [{"telemetry": ref}, {"httpsKey": ref}]
    held = planned(provisioningState="Updating")
    assert held.actions == []
    assert {(s.code, s.category.value) for s in held.skipped} == {
        ("SECRET_ROTATION_PENDING", "in-progress")
    }


def test_observed_digest_ignores_status_but_not_configuration() -> None:
    base = fx.compliant(F, fx.CLUSTER_CONFIG)
    noisy = fx.compliant(F, fx.CLUSTER_CONFIG, current="1.16.12", statuses=[{"code": "x"}])
    noisy = ObservedCluster(
        facts=F,
        extensions=noisy.extensions,
        flux_configurations=(
            fx.flux_json(
                F.id, fx.CLUSTER_CONFIG, complianceState="Pending", statusUpdatedAt="later"
            ),
        ),
    )
    assert observed_digest(base) == observed_digest(noisy)
    drifted = fx.compliant(F, changed(fx.CLUSTER_CONFIG, suspend=True))
    assert observed_digest(base) != observed_digest(drifted)
    failed = fx.compliant(F, fx.CLUSTER_CONFIG, provisioningState="Failed")
    assert observed_digest(base) != observed_digest(failed)
    two = fx.observe(
        F, configs=[fx.flux_json(F.id, fx.CLUSTER_CONFIG), fx.flux_json(F.id, fx.EDGE_BASELINE)]
    )
    swapped = fx.observe(F, configs=[dict(c) for c in reversed(two.flux_configurations)])
    assert observed_digest(two) == observed_digest(swapped)


def test_plans_are_deterministic_and_serialisable() -> None:
    observed = fx.observe(
        F, configs=[fx.flux_json(F.id, fx.EDGE_BASELINE)], v1=[fx.flux_v1_json(F.id)]
    )
    policies = (fx.baseline(migrateFluxV1=True, deleteUnmanaged=True), fx.cluster_config())
    first = run(observed, *policies).plan
    again = run(observed, *policies).plan
    assert first.model_dump(mode="json") == again.model_dump(mode="json")
    dumped = first.model_dump(mode="json", by_alias=True)
    assert ClusterPlan.model_validate(dumped) == first
    assert dumped["actions"][0]["kind"] == "delete_flux_v1"

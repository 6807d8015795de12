"""The version nudge: remediation re-PUTs an auto-upgrading extension stuck outside an
enforce-owned version window (docs/remediation.md), and never anything else."""

from __future__ import annotations

from typing import Any

from fleet.core.vocabulary import Code
from fleet.observe.observed import ObservedCluster
from fleet.plan.actions import ActionKind, ClusterPlan
from fleet.plan.pipeline import Judgement
from fleet.policy.models import Policy
from tests.engine import fixtures as fx

DEV = fx.aks("aks-dev-00001", tags={"env": "dev"}, rg="rg-dev-1")


def run(observed: ObservedCluster, *policies: Policy, nudge: bool = True) -> Judgement:
    return fx.judged(observed, *policies, nudge_stuck_versions=nudge)


def skipped(plan: ClusterPlan) -> dict[str, str]:
    return {s.code: s.reason for s in plan.skipped}


def stuck(facts: Any = DEV, current: str = "1.15.2", **ext: Any) -> ObservedCluster:
    return fx.compliant(facts, fx.CLUSTER_CONFIG, current=current, **ext)


def test_a_stuck_auto_upgrade_extension_gets_its_own_body_back() -> None:
    observed = stuck()
    plan = run(observed, fx.baseline(), fx.cluster_config()).plan
    [put] = plan.actions
    assert put.kind is ActionKind.PUT_EXTENSION and put.change == "~"
    assert put.resource_id == observed.extensions[0]["id"]
    assert [str(r) for r in put.reasons] == [
        "EXTENSION_VERSION_OUT_OF_WINDOW /properties/currentVersion (re-PUT nudges auto-upgrade)"
    ]
    assert put.reasons[0].nudge
    assert put.policies == ["platform-baseline"]
    props = put.body["properties"] if put.body else {}
    # The body is what the cluster already has: the PUT changes nothing but the version.
    assert props["autoUpgradeMinorVersion"] is True and "version" not in props
    assert props["releaseTrain"] == "Stable"
    assert props["configurationSettings"] == {"multiTenancy.enforce": "true"}
    assert put.changes == [
        {
            "path": "/properties/currentVersion",
            "desired": ["1.17.3", "1.17.2", "1.16.12"],
            "actual": "1.15.2",
        }
    ]
    assert plan.skipped == []


def test_sweeps_only_report_the_version() -> None:
    plan = run(stuck(), fx.baseline(), fx.cluster_config(), nudge=False).plan
    assert plan.actions == []
    assert "judged, not written" in skipped(plan)["EXTENSION_VERSION_OUT_OF_WINDOW"]


def test_an_audit_owned_window_is_not_nudged() -> None:
    # prod: flux-version-audit (audit, priority 200) owns the window
    plan = run(
        stuck(fx.aks(), current="1.16.12"), fx.baseline(), fx.cluster_config(), fx.version_audit()
    ).plan
    assert plan.actions == []
    assert skipped(plan)["EXTENSION_VERSION_OUT_OF_WINDOW"] == "audit mode"


def test_the_arm64_floor_is_nudged_by_the_policies_declaring_the_extension() -> None:
    facts = fx.arc("arc-dev-00002", arm64=True)
    plan = run(stuck(facts, current="1.6.3"), fx.baseline(), fx.cluster_config()).plan
    [put] = plan.actions
    assert {r.code for r in put.reasons} == {
        Code.EXTENSION_VERSION_OUT_OF_WINDOW,
        Code.EXTENSION_VERSION_UNSUPPORTED_ARCH,
    }


def test_a_pinned_version_is_never_nudged() -> None:
    observed = stuck(autoUpgradeMinorVersion=False, version="1.15.2")
    pinless = fx.policy("pinless", priority=10, extension={"versionWindow": 2})
    plan = run(observed, pinless).plan
    assert plan.actions == []
    assert "pinned" in skipped(plan)["EXTENSION_VERSION_OUT_OF_WINDOW"]


def test_an_extension_with_an_operation_in_progress_is_left_alone() -> None:
    plan = run(stuck(provisioningState="Updating"), fx.baseline(), fx.cluster_config()).plan
    assert plan.actions == []
    assert "in progress" in skipped(plan)["EXTENSION_VERSION_OUT_OF_WINDOW"]


def test_a_conflicting_extension_is_not_nudged() -> None:
    plan = run(
        stuck(fx.aks("aks-dev-7", tags={"env": "dev", "tenancy": "shared"})),
        fx.baseline(),
        fx.shared_tenancy(),
        fx.cluster_config(),
    ).plan
    assert not [a for a in plan.actions if a.kind is ActionKind.PUT_EXTENSION]
    assert "conflict" in skipped(plan)["EXTENSION_VERSION_OUT_OF_WINDOW"]


def test_flux_v1_blocks_the_nudge_unless_it_is_migrated() -> None:
    observed = fx.compliant(DEV, fx.CLUSTER_CONFIG, current="1.15.2")
    observed = fx.observe(
        DEV,
        extensions=list(observed.extensions),
        configs=list(observed.flux_configurations),
        v1=[fx.flux_v1_json(DEV.id)],
    )
    plan = run(observed, fx.baseline(), fx.cluster_config()).plan
    assert plan.actions == []
    assert "Flux v1" in skipped(plan)["EXTENSION_VERSION_OUT_OF_WINDOW"]
    migrated = run(observed, fx.baseline(migrateFluxV1=True), fx.cluster_config()).plan
    assert [a.kind for a in migrated.actions] == [
        ActionKind.DELETE_FLUX_V1,
        ActionKind.PUT_EXTENSION,
    ]


def test_a_put_planned_anyway_is_the_nudge() -> None:
    observed = fx.observe(
        DEV,
        extensions=[fx.extension_json(DEV.id, current="1.15.2", releaseTrain="Preview")],
        configs=[fx.flux_json(DEV.id, fx.CLUSTER_CONFIG)],
    )
    plan = run(observed, fx.baseline(), fx.cluster_config()).plan
    [put] = plan.actions
    assert str(put.reasons[0]) == "EXTENSION_DRIFT /properties/releaseTrain"
    assert any(r.nudge for r in put.reasons)
    assert plan.skipped == []

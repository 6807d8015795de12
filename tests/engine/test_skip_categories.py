"""Skip categories are set by the planner where it decides, and agree with the substring rules
kept here as the reference (what the reason texts mean); reasons of actions are structured;
plans saved without categories or with text reasons still load."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from fleet.core.clusters import facts_from_arm
from fleet.core.ids import CLUSTER_PROVIDERS, split_child
from fleet.core.ids import key as id_key
from fleet.core.vocabulary import Code
from fleet.emulator.generate import generate
from fleet.evaluate.versions import Catalog
from fleet.observe.observed import ObservedCluster
from fleet.plan.actions import EXTENSION_RECREATED, ClusterPlan, Reason, SkipCategory, Skipped
from fleet.plan.pipeline import judge
from fleet.policy.loading import load
from fleet.policy.models import Policy
from fleet.select.selection import Applicable
from fleet.select.selection import applicable as targeting
from tests.conftest import POLICIES
from tests.engine import fixtures as fx

# The rules ``fleet.jobs.remediate.skip_category`` and ``fleet.jobs.preparing._why`` applied to
# a skip's code and reason text before the planner said the category itself: the oracle.
_LEGACY_BY_CODE = {
    "CLUSTER_UNREACHABLE": "unreachable",
    "CLUSTER_STOPPED": "stopped",
    "READ_ERROR": "read-error",
    # Added with the category itself (no plan before it carried this code).
    "CLUSTER_INELIGIBLE": "ineligible",
}
_LEGACY_BY_TEXT = (
    ("policy conflict", "conflict"),
    ("Flux v1", "flux-v1"),
    ("audit mode", "audit"),
    ("create-only", "immutable"),
    ("pinned", "pinned"),
    ("in progress", "in-progress"),
    ("Non-Compliant but the configuration matches", "not-writable"),
    ("not declared by any policy", "unmanaged"),
    ("ARM64", "policy-error"),
)


def legacy_category(code: str, reason: str) -> str:
    if code in _LEGACY_BY_CODE:
        return _LEGACY_BY_CODE[code]
    return next((c for needle, c in _LEGACY_BY_TEXT if needle in reason), "not-writable")


DEV = fx.aks("aks-dev-00001", tags={"env": "dev"}, rg="rg-dev-1")
PIN_ARM64 = fx.policy("pin", extension={"autoUpgradeMinorVersion": False, "version": "1.6.3"})
AUDIT_ALL = fx.policy(
    "watch",
    mode="audit",
    extension={"releaseTrain": "Stable"},
    fluxConfigurations=[fx.CLUSTER_CONFIG],
)


def _with_v1(observed: ObservedCluster) -> ObservedCluster:
    return fx.observe(
        observed.facts,
        extensions=list(observed.extensions),
        configs=list(observed.flux_configurations),
        v1=[fx.flux_v1_json(observed.facts.id)],
    )


def scenarios() -> Iterator[tuple[ObservedCluster, tuple[Policy, ...]]]:
    """A cluster for every kind of skip the planner makes (see tests/engine/test_planning.py
    and tests/remediate/test_nudge.py for what each one plans)."""
    both = (fx.baseline(), fx.cluster_config())
    yield fx.observe(fx.arc(status="Offline", last=fx.NOW - timedelta(days=3))), both
    yield fx.observe(fx.aks(power="Stopped")), both
    yield fx.observe(fx.aks(), read_error="HTTP 500"), both
    yield fx.observe(fx.aks().model_copy(update={"kubernetes_version": "1.19.16"})), both
    yield (
        fx.compliant(fx.aks(), releaseTrain="Preview"),
        (fx.baseline(), fx.shared_tenancy(), fx.cluster_config()),
    )
    yield fx.observe(fx.aks(), v1=[fx.flux_v1_json(fx.aks().id)]), both
    yield fx.observe(fx.aks()), (AUDIT_ALL,)
    yield (
        fx.compliant(fx.aks(), fx.CLUSTER_CONFIG, releaseTrain="Preview"),
        (fx.baseline(), fx.version_audit()),
    )
    yield fx.compliant(fx.aks(), fx.CLUSTER_CONFIG, name="flux-old", releaseTrain="Preview"), both
    spec = {**fx.CLUSTER_CONFIG, "namespace": "old", "suspend": True}
    yield fx.observe(fx.aks(), configs=[fx.flux_json(fx.aks().id, spec)]), (fx.cluster_config(),)
    yield fx.compliant(DEV, fx.CLUSTER_CONFIG, current="1.15.2"), both
    pinned = fx.compliant(
        DEV, fx.CLUSTER_CONFIG, current="1.15.2", autoUpgradeMinorVersion=False, version="1.15.2"
    )
    yield pinned, (fx.policy("pinless", priority=10, extension={"versionWindow": 2}),)
    yield fx.compliant(DEV, fx.CLUSTER_CONFIG, current="1.15.2", provisioningState="Updating"), both
    shared = fx.aks("aks-dev-7", tags={"env": "dev", "tenancy": "shared"})
    yield fx.compliant(shared, fx.CLUSTER_CONFIG, current="1.15.2"), (*both, fx.shared_tenancy())
    yield _with_v1(fx.compliant(DEV, fx.CLUSTER_CONFIG, current="1.15.2")), both
    yield fx.compliant(DEV, fx.CLUSTER_CONFIG, current="1.15.2"), (fx.cluster_config(),)
    yield (
        fx.compliant(DEV, fx.CLUSTER_CONFIG, current="1.15.2"),
        (fx.baseline(), fx.version_audit()),
    )
    yield (
        fx.observe(
            DEV,
            extensions=[fx.extension_json(DEV.id, current="1.15.2", releaseTrain="Preview")],
            configs=[fx.flux_json(DEV.id, fx.CLUSTER_CONFIG)],
        ),
        (fx.policy("pin-new", extension={"autoUpgradeMinorVersion": False, "version": "1.17.3"}),),
    )
    noncompliant = fx.flux_json(fx.aks().id, fx.CLUSTER_CONFIG, complianceState="Non-Compliant")
    yield fx.observe(fx.aks(), configs=[noncompliant]), (fx.cluster_config(),)
    two = [
        fx.flux_json(fx.aks().id, fx.CLUSTER_CONFIG),
        fx.flux_json(fx.aks().id, fx.EDGE_BASELINE),
    ]
    yield fx.observe(fx.aks(), configs=two), (fx.cluster_config(),)
    audit_deleter = fx.policy("audit", mode="audit", remediation={"deleteUnmanaged": True})
    yield fx.observe(fx.aks(), configs=two), (fx.cluster_config(), audit_deleter)
    yield fx.observe(fx.aks(arm64=True)), (PIN_ARM64,)
    yield (
        fx.compliant(fx.arc("arc-dev-00002", arm64=True), fx.CLUSTER_CONFIG, current="1.6.3"),
        both,
    )


def plans_of(
    observed: ObservedCluster, targeted: list[Applicable], catalog: Catalog
) -> Iterator[ClusterPlan]:
    for nudge in (False, True):  # sweeps and saved plans; remediation jobs
        yield judge(
            observed, targeted, catalog=catalog, now=fx.NOW, nudge_stuck_versions=nudge
        ).plan


def _fixture_skips() -> list[Skipped]:
    return [
        s
        for observed, policies in scenarios()
        for p in plans_of(observed, fx.applicable(*policies), fx.CATALOG)
        for s in p.skipped
    ]


def _generated_skips() -> list[Skipped]:
    """Every cluster of a generated fleet (every defect kind) against the example policies."""
    snapshot = generate(clusters=100, subscriptions=3, seed=11)
    catalog = Catalog.from_mapping(snapshot["extensionTypeVersions"]["microsoft.flux"])
    policy_set = load([POLICIES], today=fx.NOW.date())
    cluster_types = set(CLUSTER_PROVIDERS.values())
    children: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in snapshot["resources"]:
        if r["type"].startswith("Microsoft.KubernetesConfiguration/"):
            cid, kind, _ = split_child(r["id"])
            children.setdefault(id_key(cid), {}).setdefault(kind, []).append(r)
    found: list[Skipped] = []
    for r in snapshot["resources"]:
        if r["type"] not in cluster_types:
            continue
        facts = facts_from_arm(r)
        mine = children.get(facts.key, {})
        observed = ObservedCluster(
            facts,
            tuple(mine.get("Microsoft.KubernetesConfiguration/extensions", ())),
            tuple(mine.get("Microsoft.KubernetesConfiguration/fluxConfigurations", ())),
            tuple(mine.get("Microsoft.KubernetesConfiguration/sourceControlConfigurations", ())),
            read_error="HTTP 500"
            if snapshot["generator"]["defects"][r["id"]] == "read_error"
            else None,
        )
        for p in plans_of(observed, targeting(policy_set, facts, today=fx.NOW.date()), catalog):
            found.extend(p.skipped)
    return found


@pytest.mark.parametrize("source", ["fixtures", "generated fleet"])
def test_every_skip_carries_the_category_the_reason_rules_gave(source: str) -> None:
    skips = _fixture_skips() if source == "fixtures" else _generated_skips()
    assert skips
    wrong = [
        (s.code, s.reason, s.category.value, legacy_category(s.code, s.reason))
        for s in skips
        if s.category.value != legacy_category(s.code, s.reason)
    ]
    assert wrong == []
    if source == "fixtures":
        # every decision the planner makes was made (DEPENDS is a job's, never the planner's)
        assert {s.category for s in skips} == set(SkipCategory) - {SkipCategory.DEPENDS}


def test_only_cluster_blockers_block_writes() -> None:
    assert {c for c in SkipCategory if c.blocks_writes} == {
        SkipCategory.UNREACHABLE,
        SkipCategory.STOPPED,
        SkipCategory.READ_ERROR,
    }


def test_a_plan_saved_before_categories_and_structured_reasons_still_loads() -> None:
    cid = fx.aks().id
    old = {
        "clusterId": cid,
        "clusterName": "aks",
        "actions": [
            {
                "kind": "put_extension",
                "clusterId": cid,
                "resourceId": f"{cid}/providers/Microsoft.KubernetesConfiguration/extensions/flux",
                "method": "PUT",
                "reasons": [
                    "EXTENSION_DRIFT /properties/releaseTrain",
                    "EXTENSION_VERSION_OUT_OF_WINDOW /properties/currentVersion "
                    "(re-PUT nudges auto-upgrade)",
                    "EXTENSION_MISSING",
                    "extension recreated",
                ],
            }
        ],
        "skipped": [
            {"clusterId": cid, "resourceId": cid, "code": "CLUSTER_STOPPED", "reason": "stopped"},
            {
                "clusterId": cid,
                "resourceId": cid,
                "code": "EXTENSION_DRIFT",
                "reason": "audit mode",
            },
        ],
        "observedDigest": "sha256:0",
    }
    plan = ClusterPlan.model_validate(old)
    assert plan.actions[0].reasons == [
        Reason(code=Code.EXTENSION_DRIFT, path="/properties/releaseTrain"),
        Reason(
            code=Code.EXTENSION_VERSION_OUT_OF_WINDOW, path="/properties/currentVersion", nudge=True
        ),
        Reason(code=Code.EXTENSION_MISSING),
        EXTENSION_RECREATED,
    ]
    assert [str(r) for r in plan.actions[0].reasons] == old["actions"][0]["reasons"]
    assert [s.category for s in plan.skipped] == [SkipCategory.STOPPED, SkipCategory.NOT_WRITABLE]
    # A plan written now reads back as it was written.
    again = ClusterPlan.model_validate(plan.model_dump(mode="json", by_alias=True))
    assert again == plan


def test_an_unknown_reason_code_is_refused() -> None:
    with pytest.raises(ValueError):
        Reason.model_validate("NOT_A_CODE /properties/x")

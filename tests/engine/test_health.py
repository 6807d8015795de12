"""Flux's own health (fleet.evaluate.health), prerequisites (fleet.evaluate.eligibility), the
unknown architecture, and ARM facts on offline clusters: exact findings and states."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fleet.core.vocabulary import Code, Severity, State
from fleet.desired.render import render
from fleet.evaluate.eligibility import MINIMUM_KUBERNETES, ineligible, kubernetes_version
from fleet.evaluate.evaluate import evaluate
from fleet.evaluate.flux_hints import HINTS, hint
from fleet.evaluate.verdicts import Verdict
from fleet.observe.observed import ObservedCluster
from fleet.plan.actions import SkipCategory
from fleet.plan.pipeline import judge
from fleet.policy.health import FluxHealth, parse_limit
from fleet.policy.models import Policy
from fleet.select.selection import Applicable
from tests.engine.fixtures import (
    CATALOG,
    CLUSTER_CONFIG,
    EDGE_BASELINE,
    NOW,
    aks,
    applicable,
    arc,
    arc_edge,
    baseline,
    compliant,
    extension_json,
    flux_json,
    observe,
    policy,
)


def verdict(observed: ObservedCluster, apps: list[Applicable], now: Any = NOW) -> Verdict:
    return evaluate(observed, render(apps, observed.facts), catalog=CATALOG, now=now)


def codes(v: Verdict) -> list[tuple[str, str | None]]:
    return sorted((f.code.value, f.policy) for f in v.findings)


def config_policy(health: dict[str, Any] | None = None) -> Policy:
    spec: dict[str, Any] = {"fluxConfigurations": [CLUSTER_CONFIG]}
    if health is not None:
        spec["health"] = health
    return policy("cluster-config", priority=50, **spec)


def status(kind: str, name: str, ready: str, reason: str, message: str, **extra: Any) -> Any:
    return {
        "name": name,
        "namespace": "cluster-config",
        "kind": kind,
        "complianceState": extra.pop("complianceState", "Compliant"),
        "appliedBy": None,
        "helmReleaseProperties": extra.pop("helm", None),
        "statusConditions": [
            {
                "lastTransitionTime": "2026-11-25T11:00:00Z",
                "message": message,
                "reason": reason,
                "status": ready,
                "type": "Ready",
            }
        ],
    }


GIT_FAILING = status(
    "GitRepository",
    "cluster-config",
    "False",
    "GitOperationFailed",
    "failed to checkout and determine revision: unable to clone: authentication required",
    complianceState="Non-Compliant",
)
KS_WAITING = status(
    "Kustomization",
    "cluster-config-apps",
    "False",
    "DependencyNotReady",
    "dependency 'cluster-config/cluster-config-infra' is not ready",
    complianceState="Non-Compliant",
)
KS_OLD_API = status(
    "Kustomization",
    "cluster-config-infra",
    "False",
    "ReconciliationFailed",
    'HelmRelease/apps/podinfo dry-run failed: no matches for kind "HelmRelease" in version '
    '"helm.toolkit.fluxcd.io/v2beta1"',
    complianceState="Non-Compliant",
)
HELM_OK = status(
    "HelmRelease",
    "podinfo",
    "True",
    "InstallSucceeded",
    "Helm install succeeded",
    helm={"lastRevisionApplied": 1, "failureCount": 0},
)


def one_config(**overrides: Any) -> ObservedCluster:
    f = aks()
    return observe(
        f, extensions=[extension_json(f.id)], configs=[flux_json(f.id, CLUSTER_CONFIG, **overrides)]
    )


# --- FLUX_OBJECT_NOT_READY ----------------------------------------------------------------


def test_one_finding_per_failing_object_with_its_identity_reason_message_and_hint() -> None:
    observed = one_config(
        complianceState="Non-Compliant", statuses=[GIT_FAILING, KS_WAITING, KS_OLD_API, HELM_OK]
    )
    v = verdict(observed, applicable(config_policy()))
    objects = [f for f in v.findings if f.code is Code.FLUX_OBJECT_NOT_READY]
    assert sorted(f.path or "" for f in objects) == [
        "/properties/statuses/GitRepository/cluster-config/cluster-config",
        "/properties/statuses/Kustomization/cluster-config/cluster-config-apps",
        "/properties/statuses/Kustomization/cluster-config/cluster-config-infra",
    ]
    git = next(f for f in objects if f.actual["kind"] == "GitRepository")
    assert git.actual["reason"] == "GitOperationFailed"
    assert git.actual["message"].endswith("authentication required")
    assert "credentials" in git.actual["hint"] and "Hint:" in git.message
    assert git.policy == "cluster-config" and git.severity is Severity.MEDIUM
    assert git.desired == "Ready"
    old = next(f for f in objects if f.actual["name"] == "cluster-config-infra")
    assert "no longer served" in old.actual["hint"]
    waiting = next(f for f in objects if f.actual["name"] == "cluster-config-apps")
    assert "depends on" in waiting.actual["hint"]
    assert {f.code for f in v.findings} == {
        Code.FLUX_CONFIG_NONCOMPLIANT,
        Code.FLUX_OBJECT_NOT_READY,
    }
    assert v.state is State.NONCOMPLIANT


def test_an_unknown_message_has_no_hint_and_long_messages_are_cut() -> None:
    odd = status("OCIRepository", "x", "False", "Weird", "z" * 1000)
    v = verdict(one_config(statuses=[odd]), applicable(config_policy()))
    (f,) = v.findings
    assert "hint" not in f.actual and "Hint:" not in f.message
    assert len(f.actual["message"]) == 300 and f.actual["message"].endswith("...")


def test_reconciling_and_unknown_states_are_not_failures() -> None:
    progressing = status("Kustomization", "a", "Unknown", "Progressing", "reconciling")
    suspended = status("Kustomization", "b", "True", "Suspended", "", complianceState="Suspended")
    v = verdict(one_config(statuses=[progressing, suspended, HELM_OK]), applicable(config_policy()))
    assert v.findings == [] and v.state is State.COMPLIANT


def test_a_noncompliant_object_without_a_ready_condition_is_reported() -> None:
    entry = {"name": "n", "namespace": "ns", "kind": "Bucket", "complianceState": "Non-Compliant"}
    v = verdict(one_config(statuses=[entry]), applicable(config_policy()))
    (f,) = v.findings
    assert f.code is Code.FLUX_OBJECT_NOT_READY and f.actual["reason"] is None


def test_objects_can_be_turned_off() -> None:
    v = verdict(one_config(statuses=[GIT_FAILING]), applicable(config_policy({"objects": False})))
    assert v.findings == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["kind", "name", "statusConditions", "status", "type", "x"]),
                    inner,
                )
            ),
            max_leaves=12,
        ),
        max_size=4,
    )
)
def test_any_statuses_shape_is_judged_without_raising(junk: Any) -> None:
    v = verdict(one_config(statuses=junk), applicable(config_policy()))
    assert {f.code for f in v.findings} <= {Code.FLUX_OBJECT_NOT_READY}


# --- hints: the table is data -------------------------------------------------------------


@pytest.mark.parametrize(
    "reason, message, needle",
    [
        (
            "AccessDenied",
            "can't access 'HelmRepository/flux-system/x', cross-namespace refs",
            "multi",
        ),
        (None, 'no matches for kind "Kustomization" in version "v1beta1"', "no longer served"),
        ("ArtifactFailed", "Source artifact not found, retrying in 30s", "no artifact"),
        ("DependencyNotReady", "dependency 'a/b' is not ready", "depends on"),
        ("GitOperationFailed", "ssh: handshake failed: permission denied (publickey)", "deploy"),
        ("GitOperationFailed", "couldn't find remote ref refs/heads/nope", "does not exist"),
        ("InstallFailed", "install retries exhausted", "Helm gave up"),
        ("HealthCheckFailed", "timeout waiting for: [Deployment/a/b]", "did not become ready"),
    ],
)
def test_known_messages_have_hints(reason: str | None, message: str, needle: str) -> None:
    found = hint(reason, message)
    assert found is not None and needle in found


def test_every_hint_row_is_reachable_and_plain_messages_have_none() -> None:
    assert len({h for _, h in HINTS}) == len(HINTS)
    assert hint("Succeeded", "Applied revision: main@sha1:abc") is None
    assert hint(None, None) is None


# --- FLUX_CONFIG_PENDING and FLUX_STATUS_STALE --------------------------------------------


def test_pending_counts_from_the_last_change_and_follows_the_policy() -> None:
    observed = one_config(complianceState="Pending")
    changed = observed.flux_configurations[0]["systemData"]
    changed["lastModifiedAt"] = (NOW - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (f,) = verdict(observed, applicable(config_policy())).findings
    assert f.code is Code.FLUX_CONFIG_PENDING and f.actual == "Pending"
    assert "90 min" in f.message and "health.pendingFor" in f.message
    # a policy that allows two hours: not yet
    assert verdict(observed, applicable(config_policy({"pendingFor": "2h"}))).findings == []
    # ...and "now" is the sweep's: the same cluster judged 40 minutes later in the sweep's time
    later = verdict(
        observed, applicable(config_policy({"pendingFor": "2h"})), now=NOW + timedelta(minutes=40)
    )
    assert [x.code for x in later.findings] == [Code.FLUX_CONFIG_PENDING]


def test_stale_status_is_unknown_and_hides_what_flux_said() -> None:
    old = (NOW - timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    observed = one_config(
        statusUpdatedAt=old, complianceState="Non-Compliant", statuses=[GIT_FAILING]
    )
    v = verdict(observed, applicable(config_policy()))
    assert codes(v) == [("FLUX_STATUS_STALE", "cluster-config")]
    (f,) = v.findings
    assert f.path == "/properties/statusUpdatedAt" and f.actual == old
    assert f.severity is Severity.LOW and v.state is State.UNKNOWN
    # with staleAfter: 12h the same report is fresh and judged
    fresh = verdict(observed, applicable(config_policy({"staleAfter": "PT12H"})))
    assert {x.code for x in fresh.findings} == {
        Code.FLUX_CONFIG_NONCOMPLIANT,
        Code.FLUX_OBJECT_NOT_READY,
    }


def test_stale_and_drift_together_are_noncompliant() -> None:
    old = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    drifted = copy.deepcopy(CLUSTER_CONFIG)
    drifted["gitRepository"]["repositoryRef"] = {"branch": "dev"}
    f = aks()
    observed = observe(
        f,
        extensions=[extension_json(f.id)],
        configs=[flux_json(f.id, drifted, statusUpdatedAt=old)],
    )
    v = verdict(observed, applicable(config_policy()))
    assert {x.code for x in v.findings} == {Code.FLUX_STATUS_STALE, Code.FLUX_CONFIG_DRIFT}
    assert v.state is State.NONCOMPLIANT


def test_health_findings_are_not_writable() -> None:
    observed = one_config(complianceState="Non-Compliant", statuses=[GIT_FAILING])
    plan = judge(observed, applicable(config_policy()), catalog=CATALOG, now=NOW).plan
    assert plan.actions == []
    assert {(s.code, s.category) for s in plan.skipped} == {
        ("FLUX_CONFIG_NONCOMPLIANT", SkipCategory.NOT_WRITABLE),
        ("FLUX_OBJECT_NOT_READY", SkipCategory.NOT_WRITABLE),
    }


@pytest.mark.parametrize(
    "value, expected",
    [
        ("PT1H", timedelta(hours=1)),
        ("1h", timedelta(hours=1)),
        ("90m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("P1D", timedelta(days=1)),
    ],
)
def test_health_limits_accept_iso_and_short_forms(value: str, expected: timedelta) -> None:
    assert parse_limit(value) == expected


@pytest.mark.parametrize("value", ["soon", "0m", "31d", "PT0M", ""])
def test_bad_health_limits_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        FluxHealth.model_validate({"pendingFor": value})


def test_health_defaults() -> None:
    h = Policy.model_validate(
        {"apiVersion": "fleet/v1", "kind": "FluxPolicy", "metadata": {"name": "p"}, "spec": {}}
    ).spec.health
    assert (h.pending_limit, h.stale_limit, h.objects) == (
        timedelta(hours=1),
        timedelta(hours=6),
        True,
    )


# --- offline clusters: ARM facts count, Flux's word does not -------------------------------


def test_offline_arc_without_extension_is_noncompliant_and_skipped_for_retry() -> None:
    facts = arc(status="Offline", last=NOW - timedelta(days=5))
    jm = judge(observe(facts), applicable(baseline(), arc_edge()), catalog=CATALOG, now=NOW)
    assert jm.verdict.state is State.NONCOMPLIANT
    assert codes(jm.verdict) == [
        ("CLUSTER_UNREACHABLE", "arc-edge"),
        ("CLUSTER_UNREACHABLE", "platform-baseline"),
        ("EXTENSION_MISSING", "platform-baseline"),
        ("FLUX_CONFIG_MISSING", "arc-edge"),
    ]
    assert all(f.severity is not Severity.INFO for f in jm.verdict.findings)
    assert jm.plan.actions == []
    assert [(s.code, s.category) for s in jm.plan.skipped] == [
        ("CLUSTER_UNREACHABLE", SkipCategory.UNREACHABLE)
    ]
    assert SkipCategory.UNREACHABLE.blocks_writes


def test_offline_arc_whose_arm_resources_match_stays_unknown_and_flux_is_not_judged() -> None:
    facts = arc(status="Offline", last=NOW - timedelta(days=5))
    observed = observe(
        facts,
        extensions=[extension_json(facts.id, releaseTrain="Preview")],
        configs=[
            flux_json(
                facts.id,
                EDGE_BASELINE,
                complianceState="Non-Compliant",
                statuses=[GIT_FAILING],
                statusUpdatedAt="2026-11-01T00:00:00Z",
            )
        ],
    )
    v = verdict(observed, applicable(arc_edge()))
    assert codes(v) == [("CLUSTER_UNREACHABLE", "arc-edge")]
    assert v.state is State.UNKNOWN


# --- CLUSTER_INELIGIBLE ---------------------------------------------------------------------


def test_expired_certificate_old_kubernetes_and_unregistered_provider() -> None:
    expired = arc(status="Expired", last=NOW - timedelta(days=120))
    (why,) = ineligible(expired, NOW)
    assert "re-connect" not in why and "az connectedk8s connect" in why
    soon = arc().model_copy(update={"certificate_expires": NOW - timedelta(minutes=1)})
    assert "managedIdentityCertificateExpirationTime" in ineligible(soon, NOW)[0]
    assert (
        ineligible(arc().model_copy(update={"certificate_expires": NOW + timedelta(days=9)}), NOW)
        == []
    )
    old = aks().model_copy(update={"kubernetes_version": "v1.19.16+k3s1"})
    assert "1.20.6" in ineligible(old, NOW)[0]
    assert ineligible(aks().model_copy(update={"kubernetes_version": "1.20.6"}), NOW) == []
    lab = aks().model_copy(update={"provider_registration": "NotRegistered"})
    assert "az provider register" in ineligible(lab, NOW)[0]
    assert ineligible(aks().model_copy(update={"provider_registration": "Registered"}), NOW) == []
    assert ineligible(aks(), NOW) == []


@pytest.mark.parametrize(
    "text, parsed",
    [("1.29.2", (1, 29, 2)), ("v1.19.16+k3s1", (1, 19, 16)), ("1.30", (1, 30, 0)), ("x", None)],
)
def test_kubernetes_versions(text: str, parsed: Any) -> None:
    assert kubernetes_version(text) == parsed
    assert MINIMUM_KUBERNETES == (1, 20, 6)


def test_an_ineligible_cluster_is_noncompliant_and_skipped_not_retried() -> None:
    f = aks().model_copy(update={"provider_registration": "NotRegistered"})
    jm = judge(observe(f), applicable(baseline()), catalog=CATALOG, now=NOW)
    assert codes(jm.verdict) == [
        ("CLUSTER_INELIGIBLE", "platform-baseline"),
        ("EXTENSION_MISSING", "platform-baseline"),
    ]
    assert jm.verdict.state is State.NONCOMPLIANT
    assert jm.plan.actions == []
    ((code, category, reason),) = [(s.code, s.category, s.reason) for s in jm.plan.skipped]
    assert (code, category) == ("CLUSTER_INELIGIBLE", SkipCategory.INELIGIBLE)
    assert "not registered" in reason or "NotRegistered" in reason
    assert not SkipCategory.INELIGIBLE.blocks_writes


def test_an_expired_arc_cluster_is_ineligible_before_unreachable() -> None:
    facts = arc(status="Expired", last=NOW - timedelta(days=120))
    jm = judge(compliant(facts, EDGE_BASELINE), applicable(arc_edge()), catalog=CATALOG, now=NOW)
    assert codes(jm.verdict) == [
        ("CLUSTER_INELIGIBLE", "arc-edge"),
        ("CLUSTER_UNREACHABLE", "arc-edge"),
    ]
    assert [s.category for s in jm.plan.skipped] == [SkipCategory.INELIGIBLE]


# --- the architecture ----------------------------------------------------------------------


def test_an_unknown_architecture_is_said_and_noted_below_the_arm64_floor() -> None:
    facts = arc()
    low = compliant(facts, EDGE_BASELINE, current="1.6.3")
    v = verdict(low, applicable(baseline(), arc_edge()))
    assert v.architecture == "unknown" and v.arm64 is False
    notes = [f for f in v.findings if f.code is Code.EXTENSION_VERSION_UNSUPPORTED_ARCH]
    assert [n.severity for n in notes] == [Severity.INFO]
    assert "architecture unknown" in notes[0].message
    # a cluster known to be amd64 gets no such note, and an arm64 one the real finding
    assert verdict(compliant(aks(), current="1.6.3"), applicable(baseline())).architecture == (
        "amd64"
    )
    assert not [
        f
        for f in verdict(compliant(aks(), current="1.6.3"), applicable(baseline())).findings
        if f.code is Code.EXTENSION_VERSION_UNSUPPORTED_ARCH
    ]
    fine = verdict(compliant(facts, EDGE_BASELINE), applicable(baseline(), arc_edge()))
    assert fine.architecture == "unknown" and fine.findings == []

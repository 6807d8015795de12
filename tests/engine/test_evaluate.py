"""Evaluation: every finding code and state, attribution, and what must not be drift."""

from __future__ import annotations

import copy
import random
from datetime import date, timedelta
from typing import Any

import pytest

from fleet.core.vocabulary import Code, Severity, State
from fleet.desired.fingerprints import Fingerprints, fingerprint
from fleet.desired.render import render
from fleet.evaluate.evaluate import evaluate
from fleet.evaluate.verdicts import Verdict
from fleet.observe.observed import ObservedCluster
from fleet.policy.models import Policy
from fleet.select.selection import Applicable
from fleet.select.selection import applicable as select
from tests.engine.fixtures import (
    CATALOG,
    CLUSTER_CONFIG,
    EDGE_BASELINE,
    NOW,
    TEAM_ALPHA,
    aks,
    applicable,
    arc,
    arc_edge,
    baseline,
    cluster_config,
    compliant,
    extension_json,
    flux_json,
    flux_v1_json,
    observe,
    policy,
    shared_tenancy,
    team_alpha,
    version_audit,
)


def verdict(observed: ObservedCluster, apps: list[Applicable], **kw: Any) -> Verdict:
    return evaluate(observed, render(apps, observed.facts), catalog=CATALOG, now=NOW, **kw)


def codes(v: Verdict) -> list[tuple[str, str | None]]:
    return sorted((f.code.value, f.policy) for f in v.findings)


def states(v: Verdict) -> dict[str, str]:
    return {p.name: p.state.value for p in v.policies}


def with_config(spec: dict[str, Any], change: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    change(spec)
    return spec


STD = [baseline, cluster_config]

# --- the scenario's defect kinds: one table that covers every code and every state --------


#: A HelmRelease that multi-tenancy blocks (the shape of the agent's statuses[] entries).
HELM_BLOCKED: dict[str, Any] = {
    "name": "podinfo",
    "namespace": "apps",
    "kind": "HelmRelease",
    "complianceState": "Non-Compliant",
    "appliedBy": {"name": "cluster-config-apps", "namespace": "default"},
    "helmReleaseProperties": {
        "lastRevisionApplied": 0,
        "helmChartRef": {"name": "apps-podinfo", "namespace": "apps"},
        "failureCount": 3,
        "installFailureCount": 3,
        "upgradeFailureCount": 0,
    },
    "statusConditions": [
        {
            "lastTransitionTime": "2026-11-25T10:00:00Z",
            "message": "can't access 'HelmRepository/flux-system/podinfo', cross-namespace "
            "references have been blocked",
            "reason": "AccessDenied",
            "status": "False",
            "type": "Ready",
        }
    ],
}


def _scenario() -> list[tuple[str, ObservedCluster, list[Policy], set[Code], State]]:
    f = aks()
    ext = extension_json(f.id)
    ok_cc = flux_json(f.id, CLUSTER_CONFIG)
    legacy = dict(TEAM_ALPHA, name="legacy-apps")
    lab = aks("aks-lab-00001", rg="rg-dev-1", tags={"env": "dev"})
    return [
        ("compliant", compliant(f, CLUSTER_CONFIG), [], set(), State.COMPLIANT),
        (
            "extension_missing",
            observe(f),
            [],
            {Code.EXTENSION_MISSING, Code.FLUX_CONFIG_MISSING},
            State.NONCOMPLIANT,
        ),
        (
            "extension_failed",
            compliant(f, CLUSTER_CONFIG, provisioningState="Failed"),
            [],
            {Code.EXTENSION_FAILED},
            State.NONCOMPLIANT,
        ),
        (
            "extension_drift",
            compliant(f, CLUSTER_CONFIG, releaseTrain="Preview"),
            [],
            {Code.EXTENSION_DRIFT},
            State.NONCOMPLIANT,
        ),
        (
            "version_out_of_window",
            compliant(f, CLUSTER_CONFIG, current="1.15.2"),
            [],
            {Code.EXTENSION_VERSION_OUT_OF_WINDOW},
            State.NONCOMPLIANT,
        ),
        (
            "arm64_old_version",
            compliant(aks(arm64=True), CLUSTER_CONFIG, current="1.6.3"),
            [],
            {Code.EXTENSION_VERSION_UNSUPPORTED_ARCH, Code.EXTENSION_VERSION_OUT_OF_WINDOW},
            State.NONCOMPLIANT,
        ),
        (
            "flux_config_missing",
            observe(f, extensions=[ext]),
            [],
            {Code.FLUX_CONFIG_MISSING},
            State.NONCOMPLIANT,
        ),
        (
            "branch_drift",
            observe(
                f,
                extensions=[ext],
                configs=[
                    flux_json(
                        f.id,
                        with_config(
                            CLUSTER_CONFIG,
                            lambda s: s["gitRepository"]["repositoryRef"].update(branch="dev"),
                        ),
                    )
                ],
            ),
            [],
            {Code.FLUX_CONFIG_DRIFT},
            State.NONCOMPLIANT,
        ),
        (
            "flux_config_failed",
            observe(
                f,
                extensions=[ext],
                configs=[flux_json(f.id, CLUSTER_CONFIG, provisioningState="Failed")],
            ),
            [],
            {Code.FLUX_CONFIG_FAILED},
            State.NONCOMPLIANT,
        ),
        (
            "flux_config_noncompliant",
            observe(
                f,
                extensions=[ext],
                configs=[flux_json(f.id, CLUSTER_CONFIG, complianceState="Non-Compliant")],
            ),
            [],
            {Code.FLUX_CONFIG_NONCOMPLIANT},
            State.NONCOMPLIANT,
        ),
        (
            "unmanaged_config",
            observe(f, extensions=[ext], configs=[ok_cc, flux_json(f.id, legacy)]),
            [],
            {Code.FLUX_CONFIG_UNMANAGED},
            State.COMPLIANT,
        ),
        (
            "flux_v1",
            observe(f, v1=[flux_v1_json(f.id)]),
            [],
            {Code.FLUX_V1_PRESENT, Code.EXTENSION_MISSING, Code.FLUX_CONFIG_MISSING},
            State.NONCOMPLIANT,
        ),
        (
            "arc_offline",
            observe(arc(status="Offline", last=NOW - timedelta(days=5))),
            [baseline(), arc_edge()],
            {Code.CLUSTER_UNREACHABLE, Code.EXTENSION_MISSING, Code.FLUX_CONFIG_MISSING},
            # What ARM shows is a fact whatever the connectivity (docs/contracts.md).
            State.NONCOMPLIANT,
        ),
        (
            "aks_stopped",
            compliant(aks(power="Stopped"), CLUSTER_CONFIG),
            [],
            {Code.CLUSTER_STOPPED},
            State.UNKNOWN,
        ),
        (
            "conflict",
            compliant(aks(tags={"env": "prod", "tenancy": "shared"}), CLUSTER_CONFIG),
            [baseline(), cluster_config(), shared_tenancy()],
            {Code.POLICY_CONFLICT},
            State.CONFLICTING,
        ),
        ("exempt", observe(lab), [], set(), State.EXEMPT),
        (
            "flux_object_not_ready",
            observe(
                f,
                extensions=[ext],
                configs=[
                    flux_json(
                        f.id,
                        CLUSTER_CONFIG,
                        complianceState="Non-Compliant",
                        statuses=[HELM_BLOCKED],
                    )
                ],
            ),
            [],
            {Code.FLUX_CONFIG_NONCOMPLIANT, Code.FLUX_OBJECT_NOT_READY},
            State.NONCOMPLIANT,
        ),
        (
            "flux_config_pending",
            observe(
                f,
                extensions=[ext],
                configs=[flux_json(f.id, CLUSTER_CONFIG, complianceState="Pending")],
            ),
            [],
            {Code.FLUX_CONFIG_PENDING},
            State.NONCOMPLIANT,
        ),
        (
            "flux_status_stale",
            observe(
                f,
                extensions=[ext],
                configs=[flux_json(f.id, CLUSTER_CONFIG, statusUpdatedAt="2026-11-24T23:00:00Z")],
            ),
            [],
            {Code.FLUX_STATUS_STALE},
            State.UNKNOWN,
        ),
        (
            "ineligible_old_kubernetes",
            compliant(f.model_copy(update={"kubernetes_version": "1.19.16"}), CLUSTER_CONFIG),
            [],
            {Code.CLUSTER_INELIGIBLE},
            State.NONCOMPLIANT,
        ),
        (
            "read_error",
            observe(f, read_error="HTTP 500 after 3 retries"),
            [],
            {Code.READ_ERROR},
            State.ERROR,
        ),
    ]


SCENARIO = _scenario()


@pytest.mark.parametrize(
    "kind, observed, policies, expected, state", SCENARIO, ids=[s[0] for s in SCENARIO]
)
def test_scenario_defect_kinds(
    kind: str, observed: ObservedCluster, policies: list[Policy], expected: set[Code], state: State
) -> None:
    if kind == "exempt":
        base = policy(
            "platform-baseline",
            priority=100,
            extension={"name": "flux"},
            exemptions=[
                {
                    "cluster": "*/managedClusters/aks-lab-*",
                    "reason": "lab clusters",
                    "expiresOn": "2099-12-31",
                }
            ],
        )
        apps = select([base], observed.facts, today=NOW.date())
    else:
        apps = applicable(*(policies or [p() for p in STD]))
    v = verdict(observed, apps)
    assert {f.code for f in v.findings} == expected
    assert v.state is state


def test_the_scenario_covers_every_code_and_state() -> None:
    # A rotation is judged from fingerprints, not from what ARM shows: see
    # test_key_vault_rotation_is_pending_until_applied.
    judged_from_arm = set(Code) - {Code.SECRET_ROTATION_PENDING}
    assert set().union(*(s[3] for s in SCENARIO)) == judged_from_arm
    assert {s[4] for s in SCENARIO} == set(State)


# --- attribution and states ---------------------------------------------------------------


def test_resource_level_findings_go_to_every_contributing_policy() -> None:
    f = aks()
    v = verdict(observe(f), applicable(baseline(), cluster_config(), version_audit()))
    assert codes(v) == [
        ("EXTENSION_MISSING", "flux-version-audit"),
        ("EXTENSION_MISSING", "platform-baseline"),
        ("FLUX_CONFIG_MISSING", "cluster-config"),
    ]
    missing = next(x for x in v.findings if x.code is Code.FLUX_CONFIG_MISSING)
    assert missing.resource == (
        f"{f.id}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/cluster-config"
    )
    assert missing.severity is Severity.HIGH


def test_drift_is_attributed_to_the_owner_of_the_field() -> None:
    f = aks()
    observed = compliant(
        f, CLUSTER_CONFIG, releaseTrain="Preview", settings={"multiTenancy.enforce": "false"}
    )
    low = policy(
        "settings",
        priority=300,
        mode="audit",
        extension={"configurationSettings": {"multiTenancy.enforce": "true"}},
    )
    v = verdict(observed, applicable(baseline(), cluster_config(), low))
    drift = {(x.path, x.policy, x.desired, x.actual) for x in v.findings}
    assert drift == {
        ("/properties/releaseTrain", "platform-baseline", "Stable", "Preview"),
        # both ask for "true": both are charged
        (
            "/properties/configurationSettings/multiTenancy.enforce",
            "platform-baseline",
            "true",
            "false",
        ),
        ("/properties/configurationSettings/multiTenancy.enforce", "settings", "true", "false"),
    }
    assert states(v) == {
        "cluster-config": "compliant",
        "platform-baseline": "noncompliant",
        "settings": "noncompliant",
    }


def test_defaults_and_noise_are_not_drift() -> None:
    """A fully defaulted, noisy GET against a minimal policy gives no findings at all."""
    f = aks()
    minimal_ext = policy("ext", extension={})
    minimal_cfg = policy(
        "cfg",
        fluxConfigurations=[
            {
                "name": "minimal",
                "gitRepository": {"url": "https://example.com/repo"},
                "kustomizations": {"root": {}},
            }
        ],
    )
    observed = observe(
        f,
        extensions=[
            extension_json(
                f.id,
                extensionType="Microsoft.Flux",
                releaseTrain="stable",
                settings={"useKubeletIdentity": "true"},
            ),
            extension_json(f.id, name="dapr", extensionType="Microsoft.Dapr"),
        ],
        configs=[
            flux_json(
                f.id,
                {
                    "name": "minimal",
                    "gitRepository": {
                        "url": "https://example.com/repo",
                        "repositoryRef": {"branch": None},
                    },
                    "kustomizations": {
                        "root": {"postBuild": {"substitute": {}, "substituteFrom": None}}
                    },
                },
            )
        ],
    )
    v = verdict(observed, applicable(minimal_ext, minimal_cfg))
    assert v.findings == [] and v.state is State.COMPLIANT
    assert v.extension_version == "1.17.3" and v.extension_version_in_window is True


def test_extension_is_matched_by_type_and_a_differing_name_is_drift() -> None:
    f = aks()
    observed = compliant(f, CLUSTER_CONFIG, name="flux-ext")
    v = verdict(observed, applicable(baseline(), cluster_config()))
    [drift] = v.findings
    assert (drift.code, drift.path, drift.desired, drift.actual) == (
        Code.EXTENSION_DRIFT,
        "/name",
        "flux",
        "flux-ext",
    )
    assert drift.resource.endswith("/extensions/flux-ext")
    # Same name in another case is the same ARM resource.
    assert (
        verdict(
            compliant(f, CLUSTER_CONFIG, name="Flux"), applicable(baseline(), cluster_config())
        ).findings
        == []
    )
    # Without a name in any policy, any name is fine.
    unnamed = policy("ext", extension={"releaseTrain": "Stable"})
    assert verdict(observed, applicable(unnamed, cluster_config())).findings == []


def test_extension_of_another_type_is_not_the_flux_extension() -> None:
    f = aks()
    observed = observe(
        f, extensions=[extension_json(f.id, name="flux", extensionType="microsoft.dapr")]
    )
    assert {x.code for x in verdict(observed, applicable(baseline())).findings} == {
        Code.EXTENSION_MISSING
    }


def test_ungoverned_extension_fields_are_not_drift() -> None:
    f = aks()
    observed = compliant(
        f, autoUpgradeMinorVersion=False, version="1.17.2", releaseTrain="Preview", current="1.17.2"
    )
    only_settings = policy(
        "s", extension={"configurationSettings": {"multiTenancy.enforce": "true"}}
    )
    # releaseTrain is not governed: the version is judged against Stable's releases.
    assert verdict(observed, applicable(only_settings)).findings == []
    train = policy("t", extension={"releaseTrain": "Preview"})
    [out] = verdict(observed, applicable(train)).findings
    assert out.code is Code.EXTENSION_VERSION_OUT_OF_WINDOW and "Preview" in out.message


def test_pinned_version_drift() -> None:
    f = aks()
    pin = policy("pin", extension={"autoUpgradeMinorVersion": False, "version": "1.17.2"})
    v = verdict(compliant(f), applicable(pin))
    assert {(x.path, x.desired, x.actual) for x in v.findings} == {
        ("/properties/autoUpgradeMinorVersion", False, True),
        ("/properties/version", "1.17.2", None),
    }
    ok = compliant(f, autoUpgradeMinorVersion=False, version="1.17.2", current="1.17.2")
    assert verdict(ok, applicable(pin)).findings == []


def test_pinned_version_below_arm64_floor_is_unsupported_arch() -> None:
    pin = policy("pin", extension={"autoUpgradeMinorVersion": False, "version": "1.6.3"})
    v = verdict(observe(aks(arm64=True)), applicable(pin))
    arch = [x for x in v.findings if x.code is Code.EXTENSION_VERSION_UNSUPPORTED_ARCH]
    assert [(x.path, x.desired, x.policy) for x in arch] == [
        ("/properties/version", "1.6.3", "pin")
    ]
    assert not [
        x
        for x in verdict(observe(aks()), applicable(pin)).findings
        if x.code is Code.EXTENSION_VERSION_UNSUPPORTED_ARCH
    ]


def test_version_findings_go_to_the_window_owner() -> None:
    f = aks()
    observed = compliant(f, CLUSTER_CONFIG, current="1.16.12")  # N-2, not N-1
    v = verdict(observed, applicable(baseline(), cluster_config(), version_audit()))
    [out] = v.findings
    assert (out.code, out.policy, out.path, out.desired, out.actual) == (
        Code.EXTENSION_VERSION_OUT_OF_WINDOW,
        "flux-version-audit",
        "/properties/currentVersion",
        ["1.17.3", "1.17.2"],
        "1.16.12",
    )
    assert v.extension_version == "1.16.12" and v.extension_version_in_window is False
    assert states(v)["platform-baseline"] == "compliant"
    assert states(v)["flux-version-audit"] == "noncompliant"
    # Without the audit policy the default N-2 holds.
    assert verdict(observed, applicable(baseline(), cluster_config())).findings == []


def test_creating_extension_is_not_version_judged() -> None:
    f = aks()
    v = verdict(
        compliant(f, CLUSTER_CONFIG, current=None, provisioningState="Creating"),
        applicable(baseline(), cluster_config()),
    )
    assert v.findings == [] and v.extension_version_in_window is None


def test_flux_configs_alone_imply_the_extension() -> None:
    f = aks()
    # Not installed yet: no EXTENSION_MISSING (the first flux config PUT installs it).
    v = verdict(observe(f, configs=[flux_json(f.id, CLUSTER_CONFIG)]), applicable(cluster_config()))
    assert v.findings == []
    # Installed but stuck: judged with the default window and charged to the config policy.
    stuck = observe(
        f,
        extensions=[extension_json(f.id, current="1.15.2")],
        configs=[flux_json(f.id, CLUSTER_CONFIG)],
    )
    v = verdict(stuck, applicable(cluster_config()))
    assert codes(v) == [("EXTENSION_VERSION_OUT_OF_WINDOW", "cluster-config")]
    assert v.findings[0].desired == ["1.17.3", "1.17.2", "1.16.12"]


def test_flux_config_drift_paths() -> None:
    f = aks()
    drifted = with_config(
        CLUSTER_CONFIG,
        lambda s: (
            s["kustomizations"]["apps"].pop("dependsOn"),
            s["kustomizations"].update(debug={"path": "./debug"}),
            s.update(suspend=True),
        ),
    )
    v = verdict(
        observe(f, extensions=[extension_json(f.id)], configs=[flux_json(f.id, drifted)]),
        applicable(*[p() for p in STD]),
    )
    assert [(x.path, x.desired, x.actual) for x in v.findings] == [
        ("/properties/kustomizations/apps/dependsOn", ["infra"], []),
        (
            "/properties/kustomizations/debug",
            None,
            {
                "path": "./debug",
                "dependsOn": [],
                "timeoutInSeconds": 600,
                "syncIntervalInSeconds": 600,
                "prune": False,
                "force": False,
                "wait": True,
            },
        ),
        ("/properties/suspend", False, True),
    ]
    assert all(x.policy == "cluster-config" for x in v.findings)


def test_depends_on_order_is_not_drift() -> None:
    f = aks()
    spec = dict(CLUSTER_CONFIG, kustomizations={"a": {}, "b": {}, "c": {"dependsOn": ["a", "b"]}})
    observed_spec = dict(spec, kustomizations={"a": {}, "b": {}, "c": {"dependsOn": ["b", "a"]}})
    v = verdict(
        observe(f, configs=[flux_json(f.id, observed_spec)]),
        applicable(policy("p", fluxConfigurations=[spec])),
    )
    assert v.findings == []


@pytest.mark.parametrize("state", ["Compliant", "Unknown", "Suspended", None])
def test_other_compliance_states_are_not_findings(state: Any) -> None:
    f = aks()
    v = verdict(
        observe(f, configs=[flux_json(f.id, CLUSTER_CONFIG, complianceState=state)]),
        applicable(cluster_config()),
    )
    assert v.findings == []


def test_flux_config_matched_by_name_case_insensitively() -> None:
    f = aks()
    config = flux_json(f.id, CLUSTER_CONFIG)
    config["name"] = "Cluster-Config"
    assert verdict(observe(f, configs=[config]), applicable(cluster_config())).findings == []


def test_namespace_scoped_team_config() -> None:
    f = aks(tags={"team": "alpha", "env": "prod"})
    good = observe(f, configs=[flux_json(f.id, TEAM_ALPHA)])
    assert verdict(good, applicable(team_alpha())).findings == []
    moved = observe(f, configs=[flux_json(f.id, dict(TEAM_ALPHA, scope="cluster"))])
    [drift] = verdict(moved, applicable(team_alpha())).findings
    assert (drift.path, drift.desired, drift.actual) == (
        "/properties/scope",
        "namespace",
        "cluster",
    )


# --- unmanaged ----------------------------------------------------------------------------


def test_unmanaged_without_delete_unmanaged_is_a_warning_nobody_owns() -> None:
    f = aks()
    observed = observe(f, configs=[flux_json(f.id, EDGE_BASELINE)])
    v = verdict(observed, applicable(baseline(), cluster_config(), version_audit()))
    unmanaged = [x for x in v.findings if x.code is Code.FLUX_CONFIG_UNMANAGED]
    assert [(x.policy, x.severity) for x in unmanaged] == [(None, Severity.WARNING)]
    assert unmanaged[0].resource.endswith("/fluxConfigurations/edge-baseline")


def test_unmanaged_with_delete_unmanaged_counts_for_those_policies() -> None:
    f = aks()
    observed = observe(
        f,
        extensions=[extension_json(f.id)],
        configs=[flux_json(f.id, CLUSTER_CONFIG), flux_json(f.id, EDGE_BASELINE)],
    )
    v = verdict(
        observed, applicable(baseline(deleteUnmanaged=True), cluster_config(), version_audit())
    )
    assert codes(v) == [("FLUX_CONFIG_UNMANAGED", "platform-baseline")]
    assert v.findings[0].severity is Severity.LOW
    assert states(v) == {
        "cluster-config": "compliant",
        "flux-version-audit": "compliant",
        "platform-baseline": "noncompliant",
    }


def test_configs_of_exempt_or_overridden_policies_are_not_unmanaged() -> None:
    f = aks()
    observed = observe(f, configs=[flux_json(f.id, CLUSTER_CONFIG)])
    ex = select(
        [
            policy(
                "cc",
                fluxConfigurations=[CLUSTER_CONFIG],
                exemptions=[{"cluster": "*", "reason": "r"}],
            )
        ],
        f,
        today=NOW.date(),
    )
    v = verdict(observed, [*ex, *applicable(baseline(deleteUnmanaged=True))])
    assert not [x for x in v.findings if x.code is Code.FLUX_CONFIG_UNMANAGED]


# --- Flux v1 ------------------------------------------------------------------------------


def test_flux_v1_only_matters_when_a_policy_declares_flux() -> None:
    f = aks()
    observed = compliant(f, CLUSTER_CONFIG)
    observed = ObservedCluster(
        facts=f,
        extensions=observed.extensions,
        flux_configurations=observed.flux_configurations,
        source_control_configurations=(flux_v1_json(f.id),),
    )
    v = verdict(observed, applicable(baseline(), cluster_config()))
    assert codes(v) == [
        ("FLUX_V1_PRESENT", "cluster-config"),
        ("FLUX_V1_PRESENT", "platform-baseline"),
    ]
    assert v.findings[0].resource.endswith("/sourceControlConfigurations/legacy-v1")
    nothing = policy("tags-only")
    assert Code.FLUX_V1_PRESENT not in {
        x.code for x in verdict(observed, applicable(nothing)).findings
    }


# --- reachability -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, age, unreachable",
    [
        ("Offline", timedelta(days=5), True),
        ("Expired", timedelta(days=120), True),
        ("Connected", timedelta(hours=49), True),
        ("Connected", timedelta(hours=47), False),
        ("Connecting", timedelta(minutes=1), False),
        ("offline", timedelta(minutes=1), True),
    ],
)
def test_arc_reachability(status: str, age: timedelta, unreachable: bool) -> None:
    facts = arc(status=status, last=NOW - age)
    observed = compliant(facts, EDGE_BASELINE, releaseTrain="Preview")
    v = verdict(observed, applicable(baseline(), arc_edge()))
    if unreachable:
        # The drift ARM shows counts even though the cluster cannot be reached.
        assert v.state is State.NONCOMPLIANT and v.status == status
        expected = [
            ("CLUSTER_UNREACHABLE", "arc-edge"),
            ("CLUSTER_UNREACHABLE", "platform-baseline"),
            ("EXTENSION_DRIFT", "platform-baseline"),
        ]
        if status == "Expired":
            expected[:0] = [
                ("CLUSTER_INELIGIBLE", "arc-edge"),
                ("CLUSTER_INELIGIBLE", "platform-baseline"),
            ]
        assert codes(v) == expected
        drift = next(x for x in v.findings if x.code is Code.EXTENSION_DRIFT)
        assert drift.severity is Severity.MEDIUM and "not counted" not in drift.message
        edge = "noncompliant" if status == "Expired" else "unknown"  # ineligible counts
        assert states(v) == {"arc-edge": edge, "platform-baseline": "noncompliant"}
    else:
        assert v.state is State.NONCOMPLIANT and codes(v) == [
            ("EXTENSION_DRIFT", "platform-baseline")
        ]


def test_unreachable_cluster_does_not_judge_stale_flux_status() -> None:
    facts = arc(status="Offline", last=NOW - timedelta(days=3))
    observed = observe(
        facts,
        extensions=[extension_json(facts.id)],
        configs=[flux_json(facts.id, EDGE_BASELINE, complianceState="Non-Compliant")],
    )
    v = verdict(observed, applicable(arc_edge()))
    assert codes(v) == [("CLUSTER_UNREACHABLE", "arc-edge")]


def test_stopped_aks_is_unknown_but_conflicts_still_count() -> None:
    f = aks(power="Stopped", tags={"env": "prod", "tenancy": "shared"})
    v = verdict(compliant(f), applicable(baseline(), shared_tenancy()))
    assert states(v) == {"platform-baseline": "conflicting", "shared-tenancy": "conflicting"}
    assert v.state is State.CONFLICTING and v.status == "Stopped"
    v = verdict(compliant(f), applicable(baseline()))
    assert codes(v) == [("CLUSTER_STOPPED", "platform-baseline")]
    assert v.state is State.UNKNOWN


# --- conflicts ----------------------------------------------------------------------------


def test_conflicting_field_is_not_judged_but_the_rest_is() -> None:
    f = aks()
    observed = compliant(f, releaseTrain="Preview", settings={"multiTenancy.enforce": "maybe"})
    v = verdict(observed, applicable(baseline(), shared_tenancy()))
    assert {(x.code.value, x.path) for x in v.findings} == {
        ("POLICY_CONFLICT", "/properties/configurationSettings/multiTenancy.enforce"),
        ("EXTENSION_DRIFT", "/properties/releaseTrain"),
    }
    conflict = next(x for x in v.findings if x.code is Code.POLICY_CONFLICT)
    assert conflict.desired == {"platform-baseline": "true", "shared-tenancy": "false"}
    assert states(v) == {"platform-baseline": "conflicting", "shared-tenancy": "conflicting"}


def test_flux_config_conflict_judges_the_agreed_fields() -> None:
    f = aks()
    rival = policy(
        "rival",
        priority=50,
        fluxConfigurations=[
            with_config(CLUSTER_CONFIG, lambda s: s["kustomizations"]["apps"].update(path="./x"))
        ],
    )
    observed = observe(
        f,
        configs=[
            flux_json(
                f.id,
                with_config(
                    CLUSTER_CONFIG,
                    lambda s: (
                        s["kustomizations"]["apps"].update(path="./y"),
                        s["gitRepository"]["repositoryRef"].update(branch="dev"),
                    ),
                ),
            )
        ],
    )
    v = verdict(observed, applicable(cluster_config(), rival))
    assert codes(v) == [
        ("FLUX_CONFIG_DRIFT", "cluster-config"),
        ("FLUX_CONFIG_DRIFT", "rival"),
        ("POLICY_CONFLICT", "cluster-config"),
        ("POLICY_CONFLICT", "rival"),
    ]
    assert {x.path for x in v.findings} == {
        "/properties/gitRepository/repositoryRef/branch",
        "/properties/kustomizations/apps/path",
    }


# --- exemptions ---------------------------------------------------------------------------


def test_active_and_expired_exemptions() -> None:
    lab = aks("aks-lab-00001")
    base = policy(
        "platform-baseline",
        extension={"name": "flux"},
        exemptions=[{"cluster": "*/aks-lab-*", "reason": "lab", "expiresOn": "2026-12-31"}],
    )
    active = verdict(observe(lab), select([base], lab, today=date(2026, 12, 31)))
    assert active.state is State.EXEMPT and active.findings == []
    [result] = active.policies
    assert (result.state, result.reason, result.expires_on) == (
        State.EXEMPT,
        "lab",
        date(2026, 12, 31),
    )
    expired = verdict(observe(lab), select([base], lab, today=date(2027, 1, 1)))
    assert expired.state is State.NONCOMPLIANT
    assert codes(expired) == [("EXTENSION_MISSING", "platform-baseline")]


def test_exempt_and_judged_policies_side_by_side() -> None:
    f = aks()
    ex = policy("ex", extension={}, exemptions=[{"cluster": "*", "reason": "r"}])
    v = verdict(
        observe(f, configs=[flux_json(f.id, CLUSTER_CONFIG)]),
        select([ex, cluster_config()], f, today=NOW.date()),
    )
    assert states(v) == {"cluster-config": "compliant", "ex": "exempt"}
    assert v.state is State.EXEMPT


# --- read errors, empty sets, secrets, report shape ---------------------------------------


def test_read_error_judges_nothing_else() -> None:
    f = aks(power="Stopped")
    v = verdict(
        observe(f, read_error="HTTP 500", v1=[flux_v1_json(f.id)]),
        applicable(baseline(), cluster_config()),
    )
    assert codes(v) == [("READ_ERROR", "cluster-config"), ("READ_ERROR", "platform-baseline")]
    assert v.state is State.ERROR and "HTTP 500" in v.findings[0].message


def test_no_applicable_policy_is_compliant_without_findings() -> None:
    f = aks()
    observed = observe(f, configs=[flux_json(f.id, EDGE_BASELINE)])
    v = verdict(observed, [])
    assert v.state is State.COMPLIANT and v.policies == []
    # An unmanaged config is still reported (informational) - there is no policy to charge.
    assert [(x.code, x.severity) for x in v.findings] == [
        (Code.FLUX_CONFIG_UNMANAGED, Severity.WARNING)
    ]


def test_secret_drift_by_fingerprint() -> None:
    f = aks()
    key = b"0" * 32
    spec = dict(CLUSTER_CONFIG, configurationProtectedSettings={"httpsKey": {"fromEnv": "TOK"}})
    p = policy(
        "cc",
        fluxConfigurations=[spec],
        extension={"configurationProtectedSettings": {"sshKey": {"fromFile": "/run/ssh"}}},
    )
    observed = compliant(f, CLUSTER_CONFIG)
    ext_id, cc_id = observed.extensions[0]["id"], observed.flux_configurations[0]["id"]
    rotated = Fingerprints(
        desired={"env:TOK": fingerprint(key, "new-token"), "file:/run/ssh": None},
        applied={
            ext_id.lower(): {"sshKey": fingerprint(key, "ssh")},
            cc_id.lower(): {"httpsKey": fingerprint(key, "old-token")},
        },
    )
    v = verdict(observed, applicable(p), fingerprints=rotated)
    [drift] = v.findings
    assert (drift.code, drift.path) == (
        Code.FLUX_CONFIG_DRIFT,
        "/properties/configurationProtectedSettings/httpsKey",
    )
    assert drift.desired == fingerprint(key, "new-token")[:20]
    assert drift.actual == fingerprint(key, "old-token")[:20]
    assert "new-token" not in str(v.to_report()) and "old-token" not in str(v.to_report())
    same = Fingerprints(
        desired={"env:TOK": fingerprint(key, "t")},
        applied={cc_id.lower(): {"httpsKey": fingerprint(key, "t")}},
    )
    assert verdict(observed, applicable(p), fingerprints=same).findings == []
    assert verdict(observed, applicable(p)).findings == []


def test_key_vault_rotation_is_pending_until_applied() -> None:
    """A Key Vault reference resolving to another version than the one applied is a pending
    rotation (its versions shown, never values); the same version is compliant; a value that
    changed without a version (a reference moved from the environment) is plain drift."""
    f = aks()
    key = b"0" * 32
    ref = {"fromKeyVault": {"vault": "kv-platform", "name": "git-token"}}
    spec = dict(CLUSTER_CONFIG, configurationProtectedSettings={"httpsKey": ref})
    p = policy("cc", fluxConfigurations=[spec])
    observed = compliant(f, CLUSTER_CONFIG)
    cc_id = observed.flux_configurations[0]["id"].lower()
    desc = "keyvault:kv-platform/git-token"

    def judged(desired: str, applied: str) -> list[tuple[Code, object, object]]:
        fps = Fingerprints(desired={desc: desired}, applied={cc_id: {"httpsKey": applied}})
        v = verdict(observed, applicable(p), fingerprints=fps)
        assert "token-v1" not in str(v.to_report()) and "token-v2" not in str(v.to_report())
        return [(x.code, x.desired, x.actual) for x in v.findings]

    v1, v2 = fingerprint(key, "token-v1", "aaa111"), fingerprint(key, "token-v2", "bbb222")
    assert judged(v2, v1) == [(Code.SECRET_ROTATION_PENDING, "bbb222", "aaa111")]
    assert judged(v2, v2) == []
    assert judged(v1, fingerprint(key, "token-v1")) == []  # same value, moved to Key Vault
    [(code, _, _)] = judged(v2, fingerprint(key, "token-v1"))
    assert code is Code.FLUX_CONFIG_DRIFT
    rotation = verdict(
        observed,
        applicable(p),
        fingerprints=Fingerprints(desired={desc: v2}, applied={cc_id: {"httpsKey": v1}}),
    )
    assert rotation.state is State.NONCOMPLIANT


def test_verdict_fields_and_report_round_trip() -> None:
    f = arc(arm64=True)
    observed = compliant(f, EDGE_BASELINE, releaseTrain="Preview")
    v = verdict(observed, applicable(baseline(), arc_edge(), version_audit()))
    assert (v.id, v.name, v.type, v.resource_group) == (
        f.id,
        f.name,
        "connectedClusters",
        "rg-edge-1",
    )
    assert v.arm64 and v.status == "Connected" and v.tags == {"env": "prod"}
    assert v.extension_version == "1.17.3" and v.extension_version_in_window is True
    assert [o.path for o in v.overrides] == ["/versionWindow"]
    report = v.to_report()
    assert report["findings"][0]["code"] == "EXTENSION_DRIFT"
    assert Verdict.from_report(report) == v


def test_evaluation_is_deterministic_whatever_the_input_order() -> None:
    f = aks()
    configs = [
        flux_json(f.id, EDGE_BASELINE),
        flux_json(f.id, dict(TEAM_ALPHA, name="x")),
        flux_json(f.id, with_config(CLUSTER_CONFIG, lambda s: s.update(suspend=True))),
    ]
    policies = [baseline(), cluster_config(), version_audit(), shared_tenancy()]
    first = verdict(observe(f, configs=configs), applicable(*policies)).to_report()
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(configs)
        rng.shuffle(policies)
        again = verdict(observe(f, configs=configs), applicable(*policies)).to_report()
        assert again == first

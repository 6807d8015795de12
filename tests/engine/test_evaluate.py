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
from tests.engine import fixtures as fx


def verdict(observed: ObservedCluster, apps: list[Applicable], **kw: Any) -> Verdict:
    return evaluate(observed, render(apps, observed.facts), catalog=fx.CATALOG, now=fx.NOW, **kw)


def codes(v: Verdict) -> list[tuple[str, str | None]]:
    return sorted((f.code.value, f.policy) for f in v.findings)


def states(v: Verdict) -> dict[str, str]:
    return {p.name: p.state.value for p in v.policies}


def with_config(spec: dict[str, Any], change: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    change(spec)
    return spec


STD = [fx.baseline, fx.cluster_config]

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
    f = fx.aks()
    ext = fx.extension_json(f.id)
    ok_cc = fx.flux_json(f.id, fx.CLUSTER_CONFIG)
    legacy = dict(fx.TEAM_ALPHA, name="legacy-apps")
    lab = fx.aks("aks-lab-00001", rg="rg-dev-1", tags={"env": "dev"})

    def config_as(spec: dict[str, Any], **props: Any) -> ObservedCluster:
        # the baseline extension in place, and cluster-config as ARM reports it
        return fx.observe(f, extensions=[ext], configs=[fx.flux_json(f.id, spec, **props)])

    return [
        ("compliant", fx.compliant(f, fx.CLUSTER_CONFIG), [], set(), State.COMPLIANT),
        (
            "extension_missing",
            fx.observe(f),
            [],
            {Code.EXTENSION_MISSING, Code.FLUX_CONFIG_MISSING},
            State.NONCOMPLIANT,
        ),
        (
            "extension_failed",
            fx.compliant(f, fx.CLUSTER_CONFIG, provisioningState="Failed"),
            [],
            {Code.EXTENSION_FAILED},
            State.NONCOMPLIANT,
        ),
        (
            "extension_drift",
            fx.compliant(f, fx.CLUSTER_CONFIG, releaseTrain="Preview"),
            [],
            {Code.EXTENSION_DRIFT},
            State.NONCOMPLIANT,
        ),
        (
            "version_out_of_window",
            fx.compliant(f, fx.CLUSTER_CONFIG, current="1.15.2"),
            [],
            {Code.EXTENSION_VERSION_OUT_OF_WINDOW},
            State.NONCOMPLIANT,
        ),
        (
            "arm64_old_version",
            fx.compliant(fx.aks(arm64=True), fx.CLUSTER_CONFIG, current="1.6.3"),
            [],
            {Code.EXTENSION_VERSION_UNSUPPORTED_ARCH, Code.EXTENSION_VERSION_OUT_OF_WINDOW},
            State.NONCOMPLIANT,
        ),
        (
            "flux_config_missing",
            fx.observe(f, extensions=[ext]),
            [],
            {Code.FLUX_CONFIG_MISSING},
            State.NONCOMPLIANT,
        ),
        (
            "branch_drift",
            config_as(
                with_config(
                    fx.CLUSTER_CONFIG,
                    lambda s: s["gitRepository"]["repositoryRef"].update(branch="dev"),
                )
            ),
            [],
            {Code.FLUX_CONFIG_DRIFT},
            State.NONCOMPLIANT,
        ),
        (
            "flux_config_failed",
            config_as(fx.CLUSTER_CONFIG, provisioningState="Failed"),
            [],
            {Code.FLUX_CONFIG_FAILED},
            State.NONCOMPLIANT,
        ),
        (
            "flux_config_noncompliant",
            config_as(fx.CLUSTER_CONFIG, complianceState="Non-Compliant"),
            [],
            {Code.FLUX_CONFIG_NONCOMPLIANT},
            State.NONCOMPLIANT,
        ),
        (
            "unmanaged_config",
            fx.observe(f, extensions=[ext], configs=[ok_cc, fx.flux_json(f.id, legacy)]),
            [],
            {Code.FLUX_CONFIG_UNMANAGED},
            State.COMPLIANT,
        ),
        (
            "unrecognised_shape",
            fx.observe(
                f,
                extensions=[ext],
                configs=[
                    ok_cc,
                    fx.flux_json(f.id, legacy, sourceKind="HelmRepository", gitRepository=None),
                ],
            ),
            [],
            {Code.FLUX_CONFIG_UNMANAGED, Code.UNRECOGNISED_SHAPE},
            State.COMPLIANT,
        ),
        (
            "flux_v1",
            fx.observe(f, v1=[fx.flux_v1_json(f.id)]),
            [],
            {Code.FLUX_V1_PRESENT, Code.EXTENSION_MISSING, Code.FLUX_CONFIG_MISSING},
            State.NONCOMPLIANT,
        ),
        (
            "arc_offline",
            fx.observe(fx.arc(status="Offline", last=fx.NOW - timedelta(days=5))),
            [fx.baseline(), fx.arc_edge()],
            {Code.CLUSTER_UNREACHABLE, Code.EXTENSION_MISSING, Code.FLUX_CONFIG_MISSING},
            # What ARM shows is a fact whatever the connectivity (docs/contracts.md).
            State.NONCOMPLIANT,
        ),
        (
            "aks_stopped",
            fx.compliant(fx.aks(power="Stopped"), fx.CLUSTER_CONFIG),
            [],
            {Code.CLUSTER_STOPPED},
            State.UNKNOWN,
        ),
        (
            "conflict",
            fx.compliant(fx.aks(tags={"env": "prod", "tenancy": "shared"}), fx.CLUSTER_CONFIG),
            [fx.baseline(), fx.cluster_config(), fx.shared_tenancy()],
            {Code.POLICY_CONFLICT},
            State.CONFLICTING,
        ),
        ("exempt", fx.observe(lab), [], set(), State.EXEMPT),
        (
            "flux_object_not_ready",
            fx.observe(
                f,
                extensions=[ext],
                configs=[
                    fx.flux_json(
                        f.id,
                        fx.CLUSTER_CONFIG,
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
            fx.observe(
                f,
                extensions=[ext],
                configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG, complianceState="Pending")],
            ),
            [],
            {Code.FLUX_CONFIG_PENDING},
            State.NONCOMPLIANT,
        ),
        (
            "flux_status_stale",
            fx.observe(
                f,
                extensions=[ext],
                configs=[
                    fx.flux_json(f.id, fx.CLUSTER_CONFIG, statusUpdatedAt="2026-11-24T23:00:00Z")
                ],
            ),
            [],
            {Code.FLUX_STATUS_STALE},
            State.UNKNOWN,
        ),
        (
            "ineligible_old_kubernetes",
            fx.compliant(f.model_copy(update={"kubernetes_version": "1.19.16"}), fx.CLUSTER_CONFIG),
            [],
            {Code.CLUSTER_INELIGIBLE},
            State.NONCOMPLIANT,
        ),
        (
            "read_error",
            fx.observe(f, read_error="HTTP 500 after 3 retries"),
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
        base = fx.policy(
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
        apps = select([base], observed.facts, today=fx.NOW.date())
    else:
        apps = fx.applicable(*(policies or [p() for p in STD]))
    v = verdict(observed, apps)
    assert {f.code for f in v.findings} == expected
    assert v.state is state


def test_the_scenario_covers_every_code_and_state() -> None:
    # A rotation is judged from fingerprints, not from what ARM shows: see
    # test_key_vault_rotation_is_pending_until_applied. A foreign writer needs fleet's own
    # identity as well: see test_a_managed_resource_someone_else_wrote_is_a_foreign_writer.
    judged_from_arm = set(Code) - {Code.SECRET_ROTATION_PENDING, Code.FOREIGN_WRITER}
    assert set().union(*(s[3] for s in SCENARIO)) == judged_from_arm
    assert {s[4] for s in SCENARIO} == set(State)


# --- attribution and states ---------------------------------------------------------------


def test_resource_level_findings_go_to_every_contributing_policy() -> None:
    f = fx.aks()
    v = verdict(
        fx.observe(f), fx.applicable(fx.baseline(), fx.cluster_config(), fx.version_audit())
    )
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
    f = fx.aks()
    observed = fx.compliant(
        f, fx.CLUSTER_CONFIG, releaseTrain="Preview", settings={"multiTenancy.enforce": "false"}
    )
    low = fx.policy(
        "settings",
        priority=300,
        mode="audit",
        extension={"configurationSettings": {"multiTenancy.enforce": "true"}},
    )
    v = verdict(observed, fx.applicable(fx.baseline(), fx.cluster_config(), low))
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
    f = fx.aks()
    minimal_ext = fx.policy("ext", extension={})
    minimal_cfg = fx.policy(
        "cfg",
        fluxConfigurations=[
            {
                "name": "minimal",
                "gitRepository": {"url": "https://example.com/repo"},
                "kustomizations": {"root": {}},
            }
        ],
    )
    observed = fx.observe(
        f,
        extensions=[
            fx.extension_json(
                f.id,
                extensionType="Microsoft.Flux",
                releaseTrain="stable",
                settings={"useKubeletIdentity": "true"},
            ),
            fx.extension_json(f.id, name="dapr", extensionType="Microsoft.Dapr"),
        ],
        configs=[
            fx.flux_json(
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
    v = verdict(observed, fx.applicable(minimal_ext, minimal_cfg))
    assert v.findings == [] and v.state is State.COMPLIANT
    assert v.extension_version == "1.17.3" and v.extension_version_in_window is True


def test_extension_is_matched_by_type_and_a_differing_name_is_drift() -> None:
    f = fx.aks()
    observed = fx.compliant(f, fx.CLUSTER_CONFIG, name="flux-ext")
    v = verdict(observed, fx.applicable(fx.baseline(), fx.cluster_config()))
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
            fx.compliant(f, fx.CLUSTER_CONFIG, name="Flux"),
            fx.applicable(fx.baseline(), fx.cluster_config()),
        ).findings
        == []
    )
    # Without a name in any policy, any name is fine.
    unnamed = fx.policy("ext", extension={"releaseTrain": "Stable"})
    assert verdict(observed, fx.applicable(unnamed, fx.cluster_config())).findings == []


def test_extension_of_another_type_is_not_the_flux_extension() -> None:
    f = fx.aks()
    observed = fx.observe(
        f, extensions=[fx.extension_json(f.id, name="flux", extensionType="microsoft.dapr")]
    )
    assert {x.code for x in verdict(observed, fx.applicable(fx.baseline())).findings} == {
        Code.EXTENSION_MISSING
    }


def test_ungoverned_extension_fields_are_not_drift() -> None:
    f = fx.aks()
    observed = fx.compliant(
        f, autoUpgradeMinorVersion=False, version="1.17.2", releaseTrain="Preview", current="1.17.2"
    )
    only_settings = fx.policy(
        "s", extension={"configurationSettings": {"multiTenancy.enforce": "true"}}
    )
    # releaseTrain is not governed: the version is judged against Stable's releases.
    assert verdict(observed, fx.applicable(only_settings)).findings == []
    train = fx.policy("t", extension={"releaseTrain": "Preview"})
    [out] = verdict(observed, fx.applicable(train)).findings
    assert out.code is Code.EXTENSION_VERSION_OUT_OF_WINDOW and "Preview" in out.message


def test_pinned_version_drift() -> None:
    f = fx.aks()
    pin = fx.policy("pin", extension={"autoUpgradeMinorVersion": False, "version": "1.17.2"})
    v = verdict(fx.compliant(f), fx.applicable(pin))
    assert {(x.path, x.desired, x.actual) for x in v.findings} == {
        ("/properties/autoUpgradeMinorVersion", False, True),
        ("/properties/version", "1.17.2", None),
    }
    ok = fx.compliant(f, autoUpgradeMinorVersion=False, version="1.17.2", current="1.17.2")
    assert verdict(ok, fx.applicable(pin)).findings == []


def test_pinned_version_below_arm64_floor_is_unsupported_arch() -> None:
    pin = fx.policy("pin", extension={"autoUpgradeMinorVersion": False, "version": "1.6.3"})
    v = verdict(fx.observe(fx.aks(arm64=True)), fx.applicable(pin))
    arch = [x for x in v.findings if x.code is Code.EXTENSION_VERSION_UNSUPPORTED_ARCH]
    assert [(x.path, x.desired, x.policy) for x in arch] == [
        ("/properties/version", "1.6.3", "pin")
    ]
    assert not [
        x
        for x in verdict(fx.observe(fx.aks()), fx.applicable(pin)).findings
        if x.code is Code.EXTENSION_VERSION_UNSUPPORTED_ARCH
    ]


def test_version_findings_go_to_the_window_owner() -> None:
    f = fx.aks()
    observed = fx.compliant(f, fx.CLUSTER_CONFIG, current="1.16.12")  # N-2, not N-1
    v = verdict(observed, fx.applicable(fx.baseline(), fx.cluster_config(), fx.version_audit()))
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
    assert verdict(observed, fx.applicable(fx.baseline(), fx.cluster_config())).findings == []


def test_creating_extension_is_not_version_judged() -> None:
    f = fx.aks()
    v = verdict(
        fx.compliant(f, fx.CLUSTER_CONFIG, current=None, provisioningState="Creating"),
        fx.applicable(fx.baseline(), fx.cluster_config()),
    )
    assert v.findings == [] and v.extension_version_in_window is None


def test_flux_configs_alone_imply_the_extension() -> None:
    f = fx.aks()
    # Not installed yet: no EXTENSION_MISSING (the first flux config PUT installs it).
    v = verdict(
        fx.observe(f, configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG)]),
        fx.applicable(fx.cluster_config()),
    )
    assert v.findings == []
    # Installed but stuck: judged with the default window and charged to the config policy.
    stuck = fx.observe(
        f,
        extensions=[fx.extension_json(f.id, current="1.15.2")],
        configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG)],
    )
    v = verdict(stuck, fx.applicable(fx.cluster_config()))
    assert codes(v) == [("EXTENSION_VERSION_OUT_OF_WINDOW", "cluster-config")]
    assert v.findings[0].desired == ["1.17.3", "1.17.2", "1.16.12"]


def test_flux_config_drift_paths() -> None:
    f = fx.aks()
    drifted = with_config(
        fx.CLUSTER_CONFIG,
        lambda s: (
            s["kustomizations"]["apps"].pop("dependsOn"),
            s["kustomizations"].update(debug={"path": "./debug"}),
            s.update(suspend=True),
        ),
    )
    v = verdict(
        fx.observe(f, extensions=[fx.extension_json(f.id)], configs=[fx.flux_json(f.id, drifted)]),
        fx.applicable(*[p() for p in STD]),
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
    f = fx.aks()
    spec = dict(
        fx.CLUSTER_CONFIG, kustomizations={"a": {}, "b": {}, "c": {"dependsOn": ["a", "b"]}}
    )
    observed_spec = dict(spec, kustomizations={"a": {}, "b": {}, "c": {"dependsOn": ["b", "a"]}})
    v = verdict(
        fx.observe(f, configs=[fx.flux_json(f.id, observed_spec)]),
        fx.applicable(fx.policy("p", fluxConfigurations=[spec])),
    )
    assert v.findings == []


@pytest.mark.parametrize("state", ["Compliant", "Unknown", "Suspended", None])
def test_other_compliance_states_are_not_findings(state: Any) -> None:
    f = fx.aks()
    v = verdict(
        fx.observe(f, configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG, complianceState=state)]),
        fx.applicable(fx.cluster_config()),
    )
    assert v.findings == []


def test_flux_config_matched_by_name_case_insensitively() -> None:
    f = fx.aks()
    config = fx.flux_json(f.id, fx.CLUSTER_CONFIG)
    config["name"] = "Cluster-Config"
    assert (
        verdict(fx.observe(f, configs=[config]), fx.applicable(fx.cluster_config())).findings == []
    )


def test_namespace_scoped_team_config() -> None:
    f = fx.aks(tags={"team": "alpha", "env": "prod"})
    good = fx.observe(f, configs=[fx.flux_json(f.id, fx.TEAM_ALPHA)])
    assert verdict(good, fx.applicable(fx.team_alpha())).findings == []
    moved = fx.observe(f, configs=[fx.flux_json(f.id, dict(fx.TEAM_ALPHA, scope="cluster"))])
    [drift] = verdict(moved, fx.applicable(fx.team_alpha())).findings
    assert (drift.path, drift.desired, drift.actual) == (
        "/properties/scope",
        "namespace",
        "cluster",
    )


# --- unmanaged ----------------------------------------------------------------------------


def test_unmanaged_without_delete_unmanaged_is_a_warning_nobody_owns() -> None:
    f = fx.aks()
    observed = fx.observe(f, configs=[fx.flux_json(f.id, fx.EDGE_BASELINE)])
    v = verdict(observed, fx.applicable(fx.baseline(), fx.cluster_config(), fx.version_audit()))
    unmanaged = [x for x in v.findings if x.code is Code.FLUX_CONFIG_UNMANAGED]
    assert [(x.policy, x.severity) for x in unmanaged] == [(None, Severity.WARNING)]
    assert unmanaged[0].resource.endswith("/fluxConfigurations/edge-baseline")


def test_unmanaged_with_delete_unmanaged_counts_for_those_policies() -> None:
    f = fx.aks()
    observed = fx.observe(
        f,
        extensions=[fx.extension_json(f.id)],
        configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG), fx.flux_json(f.id, fx.EDGE_BASELINE)],
    )
    v = verdict(
        observed,
        fx.applicable(fx.baseline(deleteUnmanaged=True), fx.cluster_config(), fx.version_audit()),
    )
    assert codes(v) == [("FLUX_CONFIG_UNMANAGED", "platform-baseline")]
    assert v.findings[0].severity is Severity.LOW
    assert states(v) == {
        "cluster-config": "compliant",
        "flux-version-audit": "compliant",
        "platform-baseline": "noncompliant",
    }


def test_configs_of_exempt_or_overridden_policies_are_not_unmanaged() -> None:
    f = fx.aks()
    observed = fx.observe(f, configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG)])
    ex = select(
        [
            fx.policy(
                "cc",
                fluxConfigurations=[fx.CLUSTER_CONFIG],
                exemptions=[{"cluster": "*", "reason": "r"}],
            )
        ],
        f,
        today=fx.NOW.date(),
    )
    v = verdict(observed, [*ex, *fx.applicable(fx.baseline(deleteUnmanaged=True))])
    assert not [x for x in v.findings if x.code is Code.FLUX_CONFIG_UNMANAGED]


# --- Flux v1 ------------------------------------------------------------------------------


def test_flux_v1_only_matters_when_a_policy_declares_flux() -> None:
    f = fx.aks()
    observed = fx.compliant(f, fx.CLUSTER_CONFIG)
    observed = ObservedCluster(
        facts=f,
        extensions=observed.extensions,
        flux_configurations=observed.flux_configurations,
        source_control_configurations=(fx.flux_v1_json(f.id),),
    )
    v = verdict(observed, fx.applicable(fx.baseline(), fx.cluster_config()))
    assert codes(v) == [
        ("FLUX_V1_PRESENT", "cluster-config"),
        ("FLUX_V1_PRESENT", "platform-baseline"),
    ]
    assert v.findings[0].resource.endswith("/sourceControlConfigurations/legacy-v1")
    nothing = fx.policy("tags-only")
    assert Code.FLUX_V1_PRESENT not in {
        x.code for x in verdict(observed, fx.applicable(nothing)).findings
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
    facts = fx.arc(status=status, last=fx.NOW - age)
    observed = fx.compliant(facts, fx.EDGE_BASELINE, releaseTrain="Preview")
    v = verdict(observed, fx.applicable(fx.baseline(), fx.arc_edge()))
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
    facts = fx.arc(status="Offline", last=fx.NOW - timedelta(days=3))
    observed = fx.observe(
        facts,
        extensions=[fx.extension_json(facts.id)],
        configs=[fx.flux_json(facts.id, fx.EDGE_BASELINE, complianceState="Non-Compliant")],
    )
    v = verdict(observed, fx.applicable(fx.arc_edge()))
    assert codes(v) == [("CLUSTER_UNREACHABLE", "arc-edge")]


def test_stopped_aks_is_unknown_but_conflicts_still_count() -> None:
    f = fx.aks(power="Stopped", tags={"env": "prod", "tenancy": "shared"})
    v = verdict(fx.compliant(f), fx.applicable(fx.baseline(), fx.shared_tenancy()))
    assert states(v) == {"platform-baseline": "conflicting", "shared-tenancy": "conflicting"}
    assert v.state is State.CONFLICTING and v.status == "Stopped"
    v = verdict(fx.compliant(f), fx.applicable(fx.baseline()))
    assert codes(v) == [("CLUSTER_STOPPED", "platform-baseline")]
    assert v.state is State.UNKNOWN


# --- conflicts ----------------------------------------------------------------------------


def test_conflicting_field_is_not_judged_but_the_rest_is() -> None:
    f = fx.aks()
    observed = fx.compliant(f, releaseTrain="Preview", settings={"multiTenancy.enforce": "maybe"})
    v = verdict(observed, fx.applicable(fx.baseline(), fx.shared_tenancy()))
    assert {(x.code.value, x.path) for x in v.findings} == {
        ("POLICY_CONFLICT", "/properties/configurationSettings/multiTenancy.enforce"),
        ("EXTENSION_DRIFT", "/properties/releaseTrain"),
    }
    conflict = next(x for x in v.findings if x.code is Code.POLICY_CONFLICT)
    assert conflict.desired == {"platform-baseline": "true", "shared-tenancy": "false"}
    assert states(v) == {"platform-baseline": "conflicting", "shared-tenancy": "conflicting"}


def test_flux_config_conflict_judges_the_agreed_fields() -> None:
    f = fx.aks()
    rival = fx.policy(
        "rival",
        priority=50,
        fluxConfigurations=[
            with_config(fx.CLUSTER_CONFIG, lambda s: s["kustomizations"]["apps"].update(path="./x"))
        ],
    )
    observed = fx.observe(
        f,
        configs=[
            fx.flux_json(
                f.id,
                with_config(
                    fx.CLUSTER_CONFIG,
                    lambda s: (
                        s["kustomizations"]["apps"].update(path="./y"),
                        s["gitRepository"]["repositoryRef"].update(branch="dev"),
                    ),
                ),
            )
        ],
    )
    v = verdict(observed, fx.applicable(fx.cluster_config(), rival))
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
    lab = fx.aks("aks-lab-00001")
    base = fx.policy(
        "platform-baseline",
        extension={"name": "flux"},
        exemptions=[{"cluster": "*/aks-lab-*", "reason": "lab", "expiresOn": "2026-12-31"}],
    )
    active = verdict(fx.observe(lab), select([base], lab, today=date(2026, 12, 31)))
    assert active.state is State.EXEMPT and active.findings == []
    [result] = active.policies
    assert (result.state, result.reason, result.expires_on) == (
        State.EXEMPT,
        "lab",
        date(2026, 12, 31),
    )
    expired = verdict(fx.observe(lab), select([base], lab, today=date(2027, 1, 1)))
    assert expired.state is State.NONCOMPLIANT
    assert codes(expired) == [("EXTENSION_MISSING", "platform-baseline")]


def test_exempt_and_judged_policies_side_by_side() -> None:
    f = fx.aks()
    ex = fx.policy("ex", extension={}, exemptions=[{"cluster": "*", "reason": "r"}])
    v = verdict(
        fx.observe(f, configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG)]),
        select([ex, fx.cluster_config()], f, today=fx.NOW.date()),
    )
    assert states(v) == {"cluster-config": "compliant", "ex": "exempt"}
    assert v.state is State.EXEMPT


# --- read errors, empty sets, secrets, report shape ---------------------------------------


def test_read_error_judges_nothing_else() -> None:
    f = fx.aks(power="Stopped")
    v = verdict(
        fx.observe(f, read_error="HTTP 500", v1=[fx.flux_v1_json(f.id)]),
        fx.applicable(fx.baseline(), fx.cluster_config()),
    )
    assert codes(v) == [("READ_ERROR", "cluster-config"), ("READ_ERROR", "platform-baseline")]
    assert v.state is State.ERROR and "HTTP 500" in v.findings[0].message


def test_no_applicable_policy_is_compliant_without_findings() -> None:
    f = fx.aks()
    observed = fx.observe(f, configs=[fx.flux_json(f.id, fx.EDGE_BASELINE)])
    v = verdict(observed, [])
    assert v.state is State.COMPLIANT and v.policies == []
    # An unmanaged config is still reported (informational) - there is no policy to charge.
    assert [(x.code, x.severity) for x in v.findings] == [
        (Code.FLUX_CONFIG_UNMANAGED, Severity.WARNING)
    ]


def test_secret_drift_by_fingerprint() -> None:
    f = fx.aks()
    key = b"0" * 32
    spec = dict(fx.CLUSTER_CONFIG, configurationProtectedSettings={"httpsKey": {"fromEnv": "TOK"}})
    p = fx.policy(
        "cc",
        fluxConfigurations=[spec],
        extension={"configurationProtectedSettings": {"sshKey": {"fromFile": "/run/ssh"}}},
    )
    observed = fx.compliant(f, fx.CLUSTER_CONFIG)
    ext_id, cc_id = observed.extensions[0]["id"], observed.flux_configurations[0]["id"]
    rotated = Fingerprints(
        desired={"env:TOK": fingerprint(key, "new-token"), "file:/run/ssh": None},
        applied={
            ext_id.lower(): {"sshKey": fingerprint(key, "ssh")},
            cc_id.lower(): {"httpsKey": fingerprint(key, "old-token")},
        },
    )
    v = verdict(observed, fx.applicable(p), fingerprints=rotated)
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
    assert verdict(observed, fx.applicable(p), fingerprints=same).findings == []
    assert verdict(observed, fx.applicable(p)).findings == []


def test_key_vault_rotation_is_pending_until_applied() -> None:
    """A Key Vault reference resolving to another version than the one applied is a pending
    rotation (its versions shown, never values); the same version is compliant; a value that
    changed without a version (a reference moved from the environment) is plain drift."""
    f = fx.aks()
    key = b"0" * 32
    ref = {"fromKeyVault": {"vault": "kv-platform", "name": "git-token"}}
    spec = dict(fx.CLUSTER_CONFIG, configurationProtectedSettings={"httpsKey": ref})
    p = fx.policy("cc", fluxConfigurations=[spec])
    observed = fx.compliant(f, fx.CLUSTER_CONFIG)
    cc_id = observed.flux_configurations[0]["id"].lower()
    desc = "keyvault:kv-platform/git-token"

    def judged(desired: str, applied: str) -> list[tuple[Code, object, object]]:
        fps = Fingerprints(desired={desc: desired}, applied={cc_id: {"httpsKey": applied}})
        v = verdict(observed, fx.applicable(p), fingerprints=fps)
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
        fx.applicable(p),
        fingerprints=Fingerprints(desired={desc: v2}, applied={cc_id: {"httpsKey": v1}}),
    )
    assert rotation.state is State.NONCOMPLIANT


def test_verdict_fields_and_report_round_trip() -> None:
    f = fx.arc(arm64=True)
    observed = fx.compliant(f, fx.EDGE_BASELINE, releaseTrain="Preview")
    v = verdict(observed, fx.applicable(fx.baseline(), fx.arc_edge(), fx.version_audit()))
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
    f = fx.aks()
    configs = [
        fx.flux_json(f.id, fx.EDGE_BASELINE),
        fx.flux_json(f.id, dict(fx.TEAM_ALPHA, name="x")),
        fx.flux_json(f.id, with_config(fx.CLUSTER_CONFIG, lambda s: s.update(suspend=True))),
    ]
    policies = [fx.baseline(), fx.cluster_config(), fx.version_audit(), fx.shared_tenancy()]
    first = verdict(fx.observe(f, configs=configs), fx.applicable(*policies)).to_report()
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(configs)
        rng.shuffle(policies)
        again = verdict(fx.observe(f, configs=configs), fx.applicable(*policies)).to_report()
        assert again == first


# --- commit convergence -------------------------------------------------------------------


def test_the_verdict_carries_each_configurations_commit() -> None:
    f = fx.aks()
    synced = fx.flux_json(f.id, fx.CLUSTER_CONFIG)
    assert synced["properties"]["sourceSyncedCommitId"]
    other = fx.flux_json(f.id, {**fx.CLUSTER_CONFIG, "name": "apps"}, sourceSyncedCommitId=None)
    hostile = fx.flux_json(f.id, {**fx.CLUSTER_CONFIG, "name": "zz"}, sourceSyncedCommitId={"x": 1})
    v = verdict(
        fx.observe(f, extensions=[fx.extension_json(f.id)], configs=[synced, other, hostile]),
        fx.applicable(fx.baseline(), fx.cluster_config()),
    )
    got = [c.model_dump() for c in v.flux_commits]
    assert got == [
        {
            "configuration": "apps",
            "commit": None,
            "updated_at": other["properties"]["sourceUpdatedAt"],
        },
        {
            "configuration": fx.CLUSTER_CONFIG["name"],
            "commit": synced["properties"]["sourceSyncedCommitId"],
            "updated_at": synced["properties"]["sourceUpdatedAt"],
        },
        {
            "configuration": "zz",
            "commit": None,
            "updated_at": hostile["properties"]["sourceUpdatedAt"],
        },
    ]
    # Carried into the report JSON, and back.
    report = v.to_report()
    assert report["fluxCommits"][1]["commit"] == synced["properties"]["sourceSyncedCommitId"]
    assert Verdict.from_report(report) == v
    # A read error saw nothing: no commits.
    assert (
        verdict(fx.observe(f, read_error="boom"), fx.applicable(fx.baseline())).flux_commits == []
    )


# --- attribution and FOREIGN_WRITER -------------------------------------------------------

SOMEONE = {
    "lastModifiedBy": "ops@contoso.com",
    "lastModifiedByType": "User",
    "lastModifiedAt": "2026-11-22T09:30:00Z",
}


def _by(resource: dict[str, Any], who: dict[str, str]) -> dict[str, Any]:
    resource = copy.deepcopy(resource)
    resource["systemData"].update(who)
    return resource


def test_a_managed_resource_someone_else_wrote_is_a_foreign_writer() -> None:
    f = fx.aks()
    drifted = fx.flux_json(f.id, fx.CLUSTER_CONFIG)
    drifted["properties"]["gitRepository"]["repositoryRef"]["branch"] = "dev"
    observed = fx.observe(f, extensions=[fx.extension_json(f.id)], configs=[_by(drifted, SOMEONE)])
    apps = fx.applicable(fx.baseline(), fx.cluster_config())
    v = verdict(observed, apps, fleet_ids={"FLEET"})  # compared without case
    foreign = [x for x in v.findings if x.code is Code.FOREIGN_WRITER]
    assert len(foreign) == 1
    (fw,) = foreign
    assert fw.resource == drifted["id"] and fw.policy == fx.cluster_config().name
    assert fw.severity is Severity.WARNING
    assert fw.last_modified is not None and fw.last_modified.model_dump() == {
        "by": "ops@contoso.com",
        "by_type": "User",
        "at": "2026-11-22T09:30:00Z",
    }
    assert "ops@contoso.com (User) at 2026-11-22T09:30:00Z" in fw.message
    # The drift on that configuration says who made it; the extension, written by fleet, not
    # foreign, says fleet did.
    drift = next(x for x in v.findings if x.code is Code.FLUX_CONFIG_DRIFT)
    assert drift.last_modified == fw.last_modified
    # A warning: the state is what the drift makes it, nothing more.
    assert v.state is State.NONCOMPLIANT
    same = verdict(observed, apps)  # fleet's identity unknown: nobody is foreign
    assert Code.FOREIGN_WRITER.value not in same.codes()
    assert next(x for x in same.findings if x.code is Code.FLUX_CONFIG_DRIFT).last_modified


def test_what_fleet_wrote_and_what_no_policy_manages_are_not_foreign() -> None:
    f = fx.aks()
    unmanaged = _by(fx.flux_json(f.id, {**fx.CLUSTER_CONFIG, "name": "someone-elses"}), SOMEONE)
    observed = fx.observe(
        f,
        extensions=[fx.extension_json(f.id)],
        configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG), unmanaged],
    )
    v = verdict(observed, fx.applicable(fx.baseline(), fx.cluster_config()), fleet_ids={"fleet"})
    assert Code.FOREIGN_WRITER.value not in v.codes()
    # An extension changed by a pipeline's managed identity is foreign; a compliant one stays
    # compliant (a warning never changes a state).
    ext = _by(
        fx.extension_json(f.id), {"lastModifiedBy": "1d2c", "lastModifiedByType": "ManagedIdentity"}
    )
    v = verdict(
        fx.observe(f, extensions=[ext], configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG)]),
        fx.applicable(fx.baseline(), fx.cluster_config()),
        fleet_ids={"fleet"},
    )
    foreign = [x for x in v.findings if x.code is Code.FOREIGN_WRITER]
    assert [x.resource for x in foreign] == [ext["id"]] * len(foreign) and foreign
    assert v.state is State.COMPLIANT
    # systemData that is not what ARM sends is ignored, never an error.
    odd = copy.deepcopy(ext)
    odd["systemData"] = {"lastModifiedBy": 7}
    v = verdict(
        fx.observe(f, extensions=[odd], configs=[fx.flux_json(f.id, fx.CLUSTER_CONFIG)]),
        fx.applicable(fx.baseline(), fx.cluster_config()),
        fleet_ids={"fleet"},
    )
    assert v.state is State.COMPLIANT and Code.FOREIGN_WRITER.value not in v.codes()

"""What counts as "in place" after a write (and what a retry still has to send)."""

from __future__ import annotations

import copy

from fleet.apply.steps import token_is_clean
from fleet.apply.verify import problem, unmet
from fleet.desired.fingerprints import Fingerprints, fingerprint
from tests.engine import fixtures as fx

F = fx.aks()


def planned(observed, *policies):  # type: ignore[no-untyped-def]
    return fx.judged(observed, *policies).plan.actions


def test_a_plan_is_unmet_before_and_met_once_arm_shows_it() -> None:
    before = fx.observe(F, v1=[fx.flux_v1_json(F.id)])
    actions = planned(before, fx.baseline(migrateFluxV1=True), fx.cluster_config())
    assert [a.kind.value for a in actions] == ["delete_flux_v1", "put_extension", "put_flux_config"]
    assert [why for _, why in unmet(before, actions)] == [
        "Flux v1 configuration 'legacy-v1' still exists",
        "extension 'flux' does not exist",
        "flux configuration 'cluster-config' does not exist",
    ]
    after = fx.compliant(F, fx.CLUSTER_CONFIG)
    assert unmet(after, actions) == []


def test_drift_failure_and_non_compliance_are_unmet() -> None:
    fixed = fx.compliant(F, fx.CLUSTER_CONFIG)
    [put] = planned(fx.observe(F, extensions=list(fixed.extensions)), fx.cluster_config())
    dev = copy.deepcopy(fx.CLUSTER_CONFIG)
    dev["gitRepository"]["repositoryRef"] = {"branch": "dev"}
    drifted = fx.observe(F, extensions=list(fixed.extensions), configs=[fx.flux_json(F.id, dev)])
    assert problem(drifted, put) == (
        "flux configuration 'cluster-config' differs at "
        "/properties/gitRepository/repositoryRef/branch"
    )
    failed = fx.observe(
        F,
        configs=[
            fx.flux_json(
                F.id, fx.CLUSTER_CONFIG, provisioningState="Failed", errorMessage="git clone: 403"
            )
        ],
    )
    assert problem(failed, put) == (
        "flux configuration 'cluster-config' is in provisioningState Failed: git clone: 403"
    )
    broken = fx.observe(
        F, configs=[fx.flux_json(F.id, fx.CLUSTER_CONFIG, complianceState="Non-Compliant")]
    )
    assert problem(broken, put) == "Flux reports flux configuration 'cluster-config' Non-Compliant"
    ext = fx.observe(F, extensions=[fx.extension_json(F.id, releaseTrain="Preview")])
    [ext_put] = planned(ext, fx.baseline())
    assert "differs at /properties/releaseTrain" in (problem(ext, ext_put) or "")


def test_protected_settings_are_met_only_with_the_applied_fingerprint() -> None:
    spec = dict(fx.CLUSTER_CONFIG, configurationProtectedSettings={"httpsKey": {"fromEnv": "T"}})
    p = fx.policy("cluster-config", fluxConfigurations=[spec])
    [put] = planned(fx.observe(F, extensions=list(fx.compliant(F).extensions)), p)
    assert put.protected == {"httpsKey": "env:T"}
    observed = fx.compliant(F, fx.CLUSTER_CONFIG)
    rid = observed.flux_configurations[0]["id"].lower()
    want = fingerprint(b"k", "token-one")
    none = Fingerprints(desired={"env:T": want}, applied={})
    same = Fingerprints(desired={"env:T": want}, applied={rid: {"httpsKey": want}})
    rotated = Fingerprints(
        desired={"env:T": fingerprint(b"k", "token-two")}, applied={rid: {"httpsKey": want}}
    )
    assert "httpsKey" in (problem(observed, put, none) or "")
    assert problem(observed, put, same) is None
    assert "httpsKey" in (problem(observed, put, rotated) or "")


def test_continuation_tokens_with_a_secret_inside_are_caught() -> None:
    import base64
    import json

    def token(response: str) -> str:
        state = {"data": {"response": {"content": base64.b64encode(response.encode()).decode()}}}
        return base64.b64encode(json.dumps(state).encode()).decode()

    assert token_is_clean(token('{"properties": {"x": ""}}'), ["hunter2-secret"])
    assert not token_is_clean(token('{"properties": {"x": "hunter2-secret"}}'), ["hunter2-secret"])
    assert not token_is_clean("plain hunter2-secret", ["hunter2-secret"])
    assert token_is_clean(None, ["x"])


def test_policy_filter_keeps_that_policys_actions_and_refuses_missing_prerequisites() -> None:
    from fleet.apply.choose import filter_policy

    v1 = fx.observe(F, v1=[fx.flux_v1_json(F.id)])
    actions = planned(v1, fx.baseline(migrateFluxV1=True), fx.cluster_config())
    kept, why = filter_policy(actions, "platform-baseline")
    assert [a.kind.value for a in kept] == ["delete_flux_v1", "put_extension"] and why is None
    # cluster-config alone would install the extension with ARM's defaults, over Flux v1
    kept, why = filter_policy(actions, "cluster-config")
    assert kept == [] and why is not None
    assert "delete_flux_v1, put_extension owned by platform-baseline" in why
    assert filter_policy(actions, None) == (list(actions), None)
    drift = fx.observe(F, extensions=list(fx.compliant(F).extensions))
    kept, why = filter_policy(planned(drift, fx.baseline(), fx.cluster_config()), "cluster-config")
    assert [a.kind.value for a in kept] == ["put_flux_config"] and why is None

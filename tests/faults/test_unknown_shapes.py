"""New shapes never make a cluster unjudgeable (issue 13, item 5; ``fleet.observe.shapes``).

Azure adds enum values and properties without notice. Whatever fleet does not know becomes an
``UNRECOGNISED_SHAPE`` note (severity info, no policy) and the verdict on what fleet knows is
the same as without it: the states, every other finding and the plan. Property tests over
bodies with unknown enum values and extra fields at every level of what fleet reads.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.core.vocabulary import Code, State
from fleet.observe.observed import ObservedCluster
from fleet.observe.shapes import MAX_NOTES, unrecognised
from fleet.observe.wellformed import problems
from fleet.plan.pipeline import Judgement, judge
from tests.engine.fixtures import (
    CATALOG,
    CLUSTER_CONFIG,
    NOW,
    aks,
    applicable,
    arc,
    baseline,
    cluster_config,
    extension_json,
    flux_json,
    observe,
)

F = aks()
POLICIES = applicable(baseline(), cluster_config())


def _drifted() -> dict[str, Any]:
    config = flux_json(F.id, CLUSTER_CONFIG)
    config["properties"]["gitRepository"]["repositoryRef"]["branch"] = "dev"
    return config


#: Starting points with different verdicts: compliant, drift, a missing extension, a missing
#: configuration, an old extension.
BASES: dict[str, ObservedCluster] = {
    "compliant": observe(
        F, extensions=[extension_json(F.id)], configs=[flux_json(F.id, CLUSTER_CONFIG)]
    ),
    "drift": observe(F, extensions=[extension_json(F.id)], configs=[_drifted()]),
    "no-extension": observe(F, configs=[flux_json(F.id, CLUSTER_CONFIG)]),
    "no-config": observe(F, extensions=[extension_json(F.id, current="1.12.0")]),
}

#: Objects of a defined schema inside a child's ``properties`` (maps of user keys such as
#: ``configurationSettings``, ``kustomizations`` or ``substitute`` are not schema objects:
#: a new key there is a real change).
FLUX_OBJECTS = (
    (),
    ("gitRepository",),
    ("gitRepository", "repositoryRef"),
    ("kustomizations", "infra"),
    ("kustomizations", "apps"),
)
EXTENSION_OBJECTS = ((), ("scope",), ("scope", "cluster"))
FLUX_ENUMS = (("provisioningState",), ("complianceState",))
EXTENSION_ENUMS = (("provisioningState",),)

new_names = st.from_regex(r"\AzzNew[A-Za-z]{0,12}\Z")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
unknown_words = st.from_regex(r"\AFuture[A-Z][a-z]{1,8}\Z")


@st.composite
def mutations(draw: st.DrawFn) -> list[tuple[str, tuple[str, ...], str, Any]]:
    """A list of (child kind, path, name, value) edits: a new property or an unknown value."""
    out: list[tuple[str, tuple[str, ...], str, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flux", "extension"]))
        if draw(st.booleans()):
            objects = FLUX_OBJECTS if kind == "flux" else EXTENSION_OBJECTS
            path = draw(st.sampled_from(objects))
            out.append((kind, path, draw(new_names), draw(json_values)))
        else:
            enums = FLUX_ENUMS if kind == "flux" else EXTENSION_ENUMS
            where = draw(st.sampled_from(enums))
            out.append((kind, where[:-1], where[-1], draw(unknown_words)))
    return out


def _apply(base: ObservedCluster, edits: list[tuple[str, tuple[str, ...], str, Any]]) -> Any:
    exts = [copy.deepcopy(dict(e)) for e in base.extensions]
    flux = [copy.deepcopy(dict(c)) for c in base.flux_configurations]
    for kind, path, name, value in edits:
        for child in exts if kind == "extension" else flux:
            target = child["properties"]
            for part in path:
                target = target[part]
            target[name] = value
    return observe(base.facts, extensions=exts, configs=flux)


def _known(result: Judgement) -> tuple[Any, ...]:
    verdict = result.verdict
    findings = [
        f.model_dump(mode="json") for f in verdict.findings if f.code is not Code.UNRECOGNISED_SHAPE
    ]
    actions = [(a.kind, a.resource_id, a.body) for a in result.plan.actions]
    return verdict.state, [(p.name, p.state) for p in verdict.policies], findings, actions


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(sorted(BASES)), edits=mutations())
def test_unknown_values_and_properties_never_change_the_verdict_on_the_known(
    base: str, edits: list[tuple[str, tuple[str, ...], str, Any]]
) -> None:
    before = judge(BASES[base], POLICIES, catalog=CATALOG, now=NOW)
    odd = _apply(BASES[base], edits)
    assert problems(odd) == []
    after = judge(odd, POLICIES, catalog=CATALOG, now=NOW)
    assert _known(after) == _known(before)
    notes = [f for f in after.verdict.findings if f.code is Code.UNRECOGNISED_SHAPE]
    applies = any(
        (kind == "flux" and odd.flux_configurations) or (kind == "extension" and odd.extensions)
        for kind, *_ in edits
    )
    assert bool(notes) == applies
    assert all(f.severity == "info" and f.policy is None for f in notes)
    assert len(notes) <= MAX_NOTES + 1


def test_an_oci_configuration_no_policy_names_leaves_the_missing_extension_reported() -> None:
    """The real shape of issue 13: an OCIRepository configuration and no Flux extension."""
    facts = arc()
    oci = flux_json(
        facts.id,
        {"name": "podinfo-oci", "namespace": "podinfo"},
        sourceKind="OCIRepository",
        gitRepository=None,
        ociRepository={
            "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
            "repositoryRef": {"tag": "latest", "semver": None, "digest": None},
            "insecure": False,
            "useWorkloadIdentity": False,
            "timeoutInSeconds": 600,
            "syncIntervalInSeconds": 600,
        },
    )
    result = judge(observe(facts, configs=[oci]), [POLICIES[0]], catalog=CATALOG, now=NOW)
    assert result.verdict.state == State.NONCOMPLIANT
    codes = {f.code for f in result.verdict.findings}
    assert Code.EXTENSION_MISSING in codes and Code.READ_ERROR not in codes
    # OCIRepository is a value fleet knows now: no note for it
    assert Code.UNRECOGNISED_SHAPE not in codes


def test_a_future_source_kind_is_a_note_on_its_resource() -> None:
    future = flux_json(F.id, {"name": "next-gen"}, sourceKind="HelmRepository", gitRepository=None)
    future["properties"]["helmRepository"] = {"url": "https://charts.example"}
    odd = observe(F, extensions=[extension_json(F.id)], configs=[future])
    assert problems(odd) == []
    assert unrecognised(odd) == [
        (future["id"], "properties has the property 'helmRepository', which fleet does not know"),
        (
            future["id"],
            "properties.sourceKind has the value 'HelmRepository', which fleet does not know",
        ),
    ]
    result = judge(odd, [POLICIES[0]], catalog=CATALOG, now=NOW)
    assert result.verdict.state == State.COMPLIANT
    assert {f.code for f in result.verdict.findings} == {
        Code.UNRECOGNISED_SHAPE,
        Code.FLUX_CONFIG_UNMANAGED,
    }


def test_notes_are_bounded() -> None:
    ext = extension_json(F.id)
    ext["properties"].update({f"zzNew{i}": i for i in range(20)})
    notes = unrecognised(observe(F, extensions=[ext]))
    assert len(notes) == MAX_NOTES + 1
    assert notes[-1] == (F.id, "and 15 more unrecognised values/properties")


def test_damage_is_still_a_read_error() -> None:
    config = flux_json(F.id, CLUSTER_CONFIG)
    config["properties"]["sourceKind"] = 42
    del config["id"]
    result = judge(observe(F, configs=[config]), POLICIES, catalog=CATALOG, now=NOW)
    assert result.verdict.state == State.ERROR
    assert {f.code for f in result.verdict.findings} == {Code.READ_ERROR}
    assert "no 'id'" in result.verdict.findings[0].message

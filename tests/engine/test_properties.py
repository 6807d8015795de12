"""Property tests: judging never raises on arbitrary observed JSON, and merging is order-free."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.core.vocabulary import State
from fleet.desired.render import render
from fleet.evaluate.evaluate import evaluate
from fleet.observe.observed import ObservedCluster
from fleet.plan.planning import plan
from tests.engine import fixtures as fx

FIELD_NAMES = [
    "extensionType",
    "properties",
    "name",
    "id",
    "scope",
    "namespace",
    "sourceKind",
    "kustomizations",
    "gitRepository",
    "repositoryRef",
    "branch",
    "dependsOn",
    "postBuild",
    "substituteFrom",
    "configurationSettings",
    "provisioningState",
    "complianceState",
    "currentVersion",
    "autoUpgradeMinorVersion",
    "releaseTrain",
    "version",
    "cluster",
    "releaseNamespace",
    "apps",
    "x",
]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "microsoft.flux",
            "Microsoft.Flux",
            "Failed",
            "Non-Compliant",
            "1.6.3",
            "1.17.3",
            "garbage",
            "",
            "flux",
            "cluster-config",
        ]
    )
)
_json: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=5)
    ),
    max_leaves=20,
)
F = fx.aks(arm64=True)


def _mutated(base: dict[str, Any], data: st.DataObject) -> Any:
    """A realistic resource with random parts of it replaced by random JSON."""
    choice = data.draw(st.integers(0, 3))
    if choice == 0:
        return data.draw(_json)
    props = dict(base["properties"])
    for key in data.draw(st.lists(st.sampled_from(sorted(props) + FIELD_NAMES), max_size=4)):
        props[key] = data.draw(_json)
    return {**base, "properties": props if choice != 3 else data.draw(_json)}


POLICY_SETS = [
    [fx.baseline(), fx.cluster_config(), fx.version_audit()],
    [
        fx.baseline(deleteUnmanaged=True, migrateFluxV1=True, recreateOnImmutableChange=True),
        fx.cluster_config(recreateOnImmutableChange=True),
        fx.shared_tenancy(),
    ],
    [fx.cluster_config()],
    [],
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_judging_arbitrary_observed_json_never_raises(data: st.DataObject) -> None:
    facts = data.draw(st.sampled_from([F, fx.aks(), fx.arc(), fx.aks(power="Stopped")]))
    extensions = tuple(
        _mutated(fx.extension_json(facts.id), data) for _ in range(data.draw(st.integers(0, 2)))
    )
    configs = tuple(
        _mutated(fx.flux_json(facts.id, fx.CLUSTER_CONFIG), data)
        for _ in range(data.draw(st.integers(0, 2)))
    )
    v1 = tuple(data.draw(st.lists(_json, max_size=2)))
    observed = ObservedCluster(
        facts=facts,
        extensions=extensions,
        flux_configurations=configs,
        source_control_configurations=v1,
    )
    policies = data.draw(st.sampled_from(POLICY_SETS))
    result = fx.judged(observed, *policies)
    report = result.verdict.to_report()  # serialisable, whatever it saw
    # judge shares one parsed view between evaluate and plan; without it they agree.
    alone = evaluate(observed, result.desired, catalog=fx.CATALOG, now=fx.NOW)
    assert alone.to_report() == report
    assert plan(observed, result.desired, alone) == result.plan
    assert report["state"] in {s.value for s in State}
    assert result.plan.observed_digest.startswith("sha256:")
    result.plan.model_dump(mode="json")


_settings = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"]), max_size=3
)
_ext_policies = st.lists(
    st.tuples(st.integers(0, 2), _settings, st.sampled_from([None, "Stable", "Preview"])),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(_ext_policies, st.randoms(use_true_random=False))
def test_extension_merge_is_independent_of_policy_order(spec: list[Any], rng: Any) -> None:
    policies = [
        fx.policy(
            f"p{i}",
            priority=prio,
            extension={
                "configurationSettings": settings_,
                **({"releaseTrain": train} if train else {}),
            },
        )
        for i, (prio, settings_, train) in enumerate(spec)
    ]
    first = render(fx.applicable(*policies), F)
    shuffled = list(policies)
    rng.shuffle(shuffled)
    again = render(fx.applicable(*shuffled), F)
    assert first.extension == again.extension
    assert first.conflicts == again.conflicts and first.overrides == again.overrides
    ext = first.extension
    assert ext is not None
    settings_ = ext.body["properties"].get("configurationSettings", {})
    for key in {k for _, s, _ in spec for k in s}:
        declared = [(prio, s[key]) for prio, s, _ in spec if key in s]
        top = max(p for p, _ in declared)
        values = {v for p, v in declared if p == top}
        if len(values) > 1:
            assert key not in settings_
            assert any(c.path.endswith("/" + key) for c in first.conflicts)
        else:
            assert settings_[key] == values.pop()

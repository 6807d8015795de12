"""Waves, the failure budget and the choice of rollout: pure, stable across runs."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.apply.waves import (
    IMPLICIT_WAVE,
    allowed_failures,
    assign_waves,
    budget_exceeded,
    choose_rollout,
    describe_budget,
    position,
)
from fleet.core.clusters import ClusterFacts
from fleet.policy.models import Policy, Rollout

SUB = "00000000-0000-0000-0000-000000000001"


def cluster(name: str, *, ring: str | None = None, sub: str = SUB) -> ClusterFacts:
    tags = {"ring": ring} if ring is not None else {}
    return ClusterFacts(
        id=f"/subscriptions/{sub}/resourceGroups/rg-1/providers/"
        f"Microsoft.ContainerService/managedClusters/{name}",
        name=name,
        cluster_type="managedClusters",
        subscription_id=sub,
        resource_group="rg-1",
        tags=tags,
    )


def rollout(*waves: dict[str, Any], **kw: Any) -> Rollout:
    return Rollout.model_validate({"waves": list(waves) or None, **kw})


def policy(name: str, *, mode: str = "enforce", priority: int = 0, **remediation: Any) -> Policy:
    return Policy.model_validate(
        {
            "apiVersion": "fleet/v1",
            "kind": "FluxPolicy",
            "metadata": {"name": name},
            "spec": {"mode": mode, "priority": priority, "remediation": remediation},
        }
    )


FLEET = [cluster(f"aks-{i:04d}", ring="0" if i % 20 == 0 else "2") for i in range(400)]
BASELINE = rollout(
    {"name": "canary", "selector": {"tags": {"ring": "0"}}},
    {"name": "early", "percent": 10},
    {"name": "broad", "percent": 100},
)


def names(plan: Any) -> dict[str, list[str]]:
    return {w.name: [c.rsplit("/", 1)[-1] for c in w.clusters] for w in plan}


def test_position_is_a_stable_hash_of_the_lower_cased_id() -> None:
    a = FLEET[3]
    assert position(a.id) == position(a.id.upper()) == position(a.id.lower())
    assert 0 <= position(a.id) < 100
    # pinned: a re-run next year lands this cluster at the same place
    assert round(position(cluster("aks-0001").id), 6) == round(
        position(
            "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg-1/providers/"
            "microsoft.containerservice/managedclusters/aks-0001"
        ),
        6,
    )


def test_selector_then_cumulative_percentages() -> None:
    plan = assign_waves(FLEET, BASELINE)
    assert [w.name for w in plan] == ["canary", "early", "broad"]  # no implicit wave needed
    got = names(plan)
    assert got["canary"] == sorted(got["canary"], key=lambda n: position(cluster(n).id))
    assert {n for n in got["canary"]} == {f"aks-{i:04d}" for i in range(0, 400, 20)}
    # early: about 10 % of the fleet by position, minus what canary took
    early = {f.name for f in FLEET if position(f.id) < 10 and f.tags["ring"] != "0"}
    assert set(got["early"]) == early
    assert 20 <= len(early) <= 60
    assert sum(len(w.clusters) for w in plan) == len(FLEET)


def test_clusters_no_wave_takes_go_to_the_implicit_last_wave() -> None:
    plan = assign_waves(
        FLEET,
        rollout(
            {"name": "canary", "selector": {"tags": {"ring": "0"}}}, {"name": "half", "percent": 50}
        ),
    )
    assert [w.name for w in plan] == ["canary", "half", IMPLICIT_WAVE]
    assert plan[-1].implicit and not plan[0].implicit
    rest = {c for c in plan[-1].clusters}
    assert rest == {f.id for f in FLEET if f.tags["ring"] != "0" and position(f.id) >= 50}


def test_no_waves_is_one_wave_and_empty_declared_waves_are_kept() -> None:
    assert [(w.name, len(w.clusters)) for w in assign_waves(FLEET[:5], Rollout())] == [("all", 5)]
    plan = assign_waves(
        FLEET[:5],
        rollout({"name": "none", "percent": 0}, {"name": "all", "percent": 100, "approval": True}),
    )
    assert [(w.name, len(w.clusters), w.approval) for w in plan] == [
        ("none", 0, False),
        ("all", 5, True),
    ]


@settings(max_examples=60, deadline=None)
@given(
    members=st.sets(st.integers(0, 399), min_size=1, max_size=120),
    others=st.sets(st.integers(400, 900), max_size=60),
    percents=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=4),
)
def test_assignment_is_stable_whatever_else_is_in_the_job(
    members: set[int], others: set[int], percents: list[float]
) -> None:
    """A cluster's wave depends on its id and the rollout only: re-runs (with fewer clusters
    left, or more added) put it in the same wave; cumulative percentages never move it later."""
    waves = [{"name": f"w{i}", "percent": p} for i, p in enumerate(sorted(percents))]
    r = rollout(*waves)
    small = [FLEET[i] for i in sorted(members)]
    big = small + [cluster(f"aks-{i:04d}", ring="2") for i in sorted(others)]

    def wave_of(plan: Any) -> dict[str, str]:
        return {c: w.name for w in plan for c in w.clusters}

    one, two = wave_of(assign_waves(small, r)), wave_of(assign_waves(list(reversed(big)), r))
    assert all(two[c] == w for c, w in one.items())
    assert sorted(one) == sorted(f.id for f in small)  # every cluster exactly once
    for facts in small:
        p = position(facts.id)
        expected = next((f"w{i}" for i, q in enumerate(sorted(percents)) if p < q), IMPLICIT_WAVE)
        assert one[facts.id] == expected


@settings(max_examples=30, deadline=None)
@given(percent=st.floats(1, 99, allow_nan=False))
def test_a_percentage_covers_about_that_share(percent: float) -> None:
    plan = assign_waves(FLEET, rollout({"name": "p", "percent": percent}))
    share = 100 * len(plan[0].clusters) / len(FLEET)
    assert abs(share - percent) < 10  # 400 clusters: a binomial spread well inside 10 points


@pytest.mark.parametrize(
    ("budget", "clusters", "failures", "exceeded"),
    [
        (0, 10, 0, False),
        (0, 10, 1, True),
        (3, 10, 3, False),
        (3, 10, 4, True),
        ("5%", 16, 0, False),
        ("5%", 16, 1, True),  # 0.8 allowed: the first failure stops
        ("5%", 40, 2, False),
        ("5%", 40, 3, True),  # exactly 2 allowed
        ("10%", 100, 10, False),
        ("10%", 100, 11, True),
        ("0%", 100, 1, True),
        ("100%", 5, 5, False),
        ("12.5%", 8, 1, False),
        ("12.5%", 8, 2, True),
    ],
)
def test_failure_budget(budget: int | str, clusters: int, failures: int, exceeded: bool) -> None:
    assert budget_exceeded(budget, failures, clusters) is exceeded


def test_budget_arithmetic_is_exact_and_described() -> None:
    assert allowed_failures("33.3%", 3) == Fraction(999, 1000)
    assert describe_budget("5%", 40) == "5% of 40 clusters: stops at 3 failed"
    assert describe_budget(2, 40) == "2 failed cluster(s): stops at 3 failed"


def test_rollout_of_the_selected_policy_or_the_highest_priority_enforce_one() -> None:
    a = policy("alpha", priority=50, rollout={"maxConcurrency": 3})
    b = policy("beta", priority=100, rollout={"maxConcurrency": 7})
    c = policy("gamma", priority=100, rollout={"maxConcurrency": 9})
    audit = policy("audit", mode="audit", priority=500, rollout={"maxConcurrency": 1})
    chosen = choose_rollout([a, b, c, audit], {"alpha", "beta", "gamma", "audit"})
    assert (chosen.policy, chosen.rollout.max_concurrency) == ("beta", 7)  # tie: by name
    assert choose_rollout([a, b, c], {"alpha"}).policy == "alpha"
    selected = choose_rollout([a, b, c], {"beta"}, "alpha")
    assert (selected.policy, selected.why) == ("alpha", "--policy")
    assert choose_rollout([a, audit], {"audit"}).policy is None

"""Selection: selector matching, exclusions, exemptions, ordering, subscription scope.

Examples pin the semantics down; hypothesis properties check what must hold for any selector
and cluster (determinism, exclusion wins, an empty selector matches all, a constraint never
widens the match, policy order never matters) and compare matching against an independent
oracle built on ``fnmatch``.
"""

from __future__ import annotations

import fnmatch
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.core.clusters import ClusterFacts
from fleet.policy.loading import PolicySet
from fleet.policy.models import Policy, Selector
from fleet.select.selection import (
    Applicable,
    active_exemption,
    applicable,
    matches,
    subscriptions_in_scope,
)

SUB1 = "00000000-0000-0000-0000-000000000001"
SUB2 = "00000000-0000-0000-0000-000000000002"
TODAY = date(2026, 11, 25)


def facts(
    name: str = "aks-prod-00001",
    *,
    rg: str = "rg-prod-weu-1",
    sub: str = SUB1,
    ctype: str = "managedClusters",
    location: str = "westeurope",
    tags: dict[str, str] | None = None,
) -> ClusterFacts:
    provider = (
        "Microsoft.ContainerService/managedClusters"
        if ctype == "managedClusters"
        else "Microsoft.Kubernetes/connectedClusters"
    )
    return ClusterFacts(
        id=f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/{name}",
        name=name,
        cluster_type=ctype,  # type: ignore[arg-type]
        subscription_id=sub,
        resource_group=rg,
        location=location,
        tags={"env": "prod", "ring": "1"} if tags is None else tags,
    )


def selector(**fields: Any) -> Selector:
    return Selector.model_validate(fields, by_alias=True, by_name=False)


def policy(name: str, priority: int = 0, **spec: Any) -> Policy:
    return Policy.model_validate(
        {
            "apiVersion": "fleet/v1",
            "kind": "FluxPolicy",
            "metadata": {"name": name},
            "spec": {"priority": priority, "extension": {"releaseTrain": "Stable"}, **spec},
        }
    )


# --- matches: examples --------------------------------------------------------------------------


def test_empty_selector_matches_any_cluster() -> None:
    assert matches(Selector(), facts())
    assert matches(selector(tags={}), facts(tags={}))


def test_every_given_field_must_match_and_list_items_are_alternatives() -> None:
    s = selector(resourceGroups=["rg-stg-*", "rg-prod-*"], clusterTypes=["managedClusters"])
    assert matches(s, facts())
    assert not matches(s, facts(ctype="connectedClusters"))
    assert not matches(s, facts(rg="rg-dev-1"))


def test_subscriptions() -> None:
    assert matches(selector(subscriptions=["*"]), facts(sub=SUB2))
    assert matches(selector(subscriptions=[SUB2, SUB1.upper()]), facts())
    assert not matches(selector(subscriptions=[SUB2]), facts())


def test_globs_are_case_insensitive() -> None:
    assert matches(selector(names=["AKS-PROD-*"]), facts())
    assert matches(selector(resourceGroups=["RG-Prod-WEU-?"]), facts())
    assert matches(selector(names=["aks-[a-z]rod-0000[0-9]"]), facts())
    assert not matches(selector(names=["aks-[!p]rod-*"]), facts())
    assert not matches(selector(names=["aks-prod"]), facts())  # whole name, not a prefix


def test_locations_ignore_case_and_spaces() -> None:
    assert matches(selector(locations=["West Europe"]), facts())
    assert matches(selector(locations=["eastus", "WESTEUROPE"]), facts())
    assert matches(selector(locations=["westeurope"]), facts(location="West Europe"))
    assert not matches(selector(locations=["westus"]), facts())


def test_tags() -> None:
    cluster = facts(tags={"Env": "Prod", "team": "alpha", "empty": ""})
    assert matches(selector(tags={"env": "prod"}), cluster)  # names and values ignore case
    assert matches(selector(tags={"env": "p*", "team": "*"}), cluster)
    assert matches(selector(tags={"empty": "*"}), cluster)  # "*" only requires the key
    assert not matches(selector(tags={"ring": "*"}), cluster)  # the key is missing
    assert not matches(selector(tags={"env": "prod", "team": "beta"}), cluster)  # all must match


# --- applicable ---------------------------------------------------------------------------------


def test_exclusion_wins_over_targets() -> None:
    p = policy("alpha", targets={"tags": {"team": "alpha"}}, exclusions=[{"tags": {"env": "dev"}}])
    assert applicable([p], facts(tags={"team": "alpha", "env": "prod"}), today=TODAY) == [
        Applicable(p, None)
    ]
    assert applicable([p], facts(tags={"team": "alpha", "env": "dev"}), today=TODAY) == []


def test_order_is_priority_then_name() -> None:
    low = policy("aaa", 1)
    high = policy("zzz", 200)
    tie_b = policy("bbb", 50)
    tie_a = policy("abc", 50)
    got = applicable([low, tie_b, high, tie_a], facts(), today=TODAY)
    assert [a.policy.name for a in got] == ["zzz", "abc", "bbb", "aaa"]


def test_exemption_until_its_last_day() -> None:
    cluster = facts("aks-lab-00007", rg="rg-dev-1")
    p = policy(
        "baseline",
        exemptions=[
            {"cluster": "*/managedClusters/aks-other-*", "reason": "other"},
            {"cluster": "*/MANAGEDCLUSTERS/AKS-LAB-*", "reason": "lab", "expiresOn": "2026-11-25"},
            {"cluster": "*", "reason": "catch-all"},
        ],
    )
    exemption = active_exemption(p, cluster, today=TODAY)
    assert exemption is not None and exemption.reason == "lab"
    later = active_exemption(p, cluster, today=TODAY + timedelta(days=1))
    assert later is not None and later.reason == "catch-all"  # the next one that matches
    (found,) = applicable([p], cluster, today=TODAY)
    assert found.exemption is exemption


def test_exemption_by_exact_id_and_no_exemption() -> None:
    cluster = facts()
    p = policy("p", exemptions=[{"cluster": cluster.id.upper(), "reason": "r"}])
    assert active_exemption(p, cluster, today=TODAY) is not None
    assert active_exemption(p, facts("aks-prod-00002"), today=TODAY) is None


def test_applicable_takes_a_policy_set() -> None:
    ps = PolicySet.from_policies([policy("b"), policy("a", targets={"names": ["nope"]})])
    assert [a.policy.name for a in applicable(ps, facts(), today=TODAY)] == ["b"]


def test_subscriptions_in_scope() -> None:
    one = policy("one", targets={"subscriptions": [SUB1.upper()]})
    two = policy("two", targets={"subscriptions": [SUB2, SUB1]})
    star = policy("star", targets={"subscriptions": ["*"]})
    unrestricted = policy("any", targets={"tags": {"env": "prod"}})
    assert subscriptions_in_scope([one, two]) == frozenset({SUB1, SUB2})
    assert subscriptions_in_scope([one, star]) is None
    assert subscriptions_in_scope([one, unrestricted]) is None
    assert subscriptions_in_scope(PolicySet.from_policies([])) == frozenset()


# --- properties ---------------------------------------------------------------------------------

NAMES = ["aks-prod-00001", "aks-dev-00002", "arc-edge-00003", "AKS-Lab-00004", "weird.name_5"]
GROUPS = ["rg-prod-weu-1", "rg-stg-1", "rg-dev-2", "RG-EDGE-3"]
LOCATIONS = ["westeurope", "West Europe", "eastus", "northeurope"]
TAG_KEYS = ["env", "ring", "team", "Env"]
TAG_VALUES = ["prod", "dev", "0", "1", "alpha", "", "PROD"]
PATTERNS = [
    "*",
    "aks-*",
    "*-0000?",
    "AKS-*",
    "rg-*-1",
    "[ar]*",
    "rg-prod-*",
    "*dev*",
    "prod",
    "?",
    "arc-edge-00003",
    "[!a]*",
    "p*",
]

facts_st = st.builds(
    lambda name, rg, sub, ctype, location, tags: facts(
        name, rg=rg, sub=sub, ctype=ctype, location=location, tags=tags
    ),
    st.sampled_from(NAMES),
    st.sampled_from(GROUPS),
    st.sampled_from([SUB1, SUB2]),
    st.sampled_from(["managedClusters", "connectedClusters"]),
    st.sampled_from(LOCATIONS),
    st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=3),
)


def _some(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3)


selector_fields = st.fixed_dictionaries(
    {},
    optional={
        "subscriptions": _some([SUB1, SUB2, "*"]),
        "resourceGroups": _some(PATTERNS + GROUPS),
        "clusterTypes": _some(["managedClusters", "connectedClusters"]),
        "locations": _some(LOCATIONS),
        "tags": st.dictionaries(
            st.sampled_from(TAG_KEYS),
            st.sampled_from(PATTERNS + [v for v in TAG_VALUES if v]),
            max_size=2,
        ),
        "names": _some(PATTERNS + NAMES),
    },
)


def _glob_oracle(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def _oracle(fields: dict[str, Any], f: ClusterFacts) -> bool:
    """An independent statement of the selection rules (fnmatch instead of fleet's globs)."""
    checks = []
    if "subscriptions" in fields:
        checks.append(
            any(s == "*" or s.lower() == f.subscription_id.lower() for s in fields["subscriptions"])
        )
    if "resourceGroups" in fields:
        checks.append(any(_glob_oracle(p, f.resource_group) for p in fields["resourceGroups"]))
    if "clusterTypes" in fields:
        checks.append(f.cluster_type in fields["clusterTypes"])
    if "locations" in fields:
        norm = f.location.replace(" ", "").lower()
        checks.append(any(loc.replace(" ", "").lower() == norm for loc in fields["locations"]))
    if "tags" in fields:
        lowered: dict[str, list[str]] = {}
        for k, v in f.tags.items():
            lowered.setdefault(k.lower(), []).append(v)
        checks.append(
            all(
                any(_glob_oracle(p, v) for v in lowered.get(k.lower(), []))
                for k, p in fields["tags"].items()
            )
        )
    if "names" in fields:
        checks.append(any(_glob_oracle(p, f.name) for p in fields["names"]))
    return all(checks)


def _unambiguous_tags(f: ClusterFacts) -> bool:
    # "env" and "Env" on one cluster cannot happen in ARM (tag names are case-insensitive).
    return len({k.lower() for k in f.tags}) == len(f.tags)


@settings(max_examples=300, deadline=None)
@given(selector_fields, facts_st)
def test_matches_agrees_with_the_oracle(fields: dict[str, Any], f: ClusterFacts) -> None:
    if not _unambiguous_tags(f):
        return
    assert matches(selector(**fields), f) == _oracle(fields, f)


@settings(max_examples=200, deadline=None)
@given(
    selector_fields,
    st.sampled_from(
        sorted(["subscriptions", "resourceGroups", "clusterTypes", "locations", "tags", "names"])
    ),
    selector_fields,
    facts_st,
)
def test_adding_a_constraint_never_widens_the_match(
    fields: dict[str, Any], extra_field: str, extra: dict[str, Any], f: ClusterFacts
) -> None:
    if extra_field in fields or extra_field not in extra:
        return
    narrower = selector(**fields, **{extra_field: extra[extra_field]})
    if matches(narrower, f):
        assert matches(selector(**fields), f)


@settings(max_examples=100, deadline=None)
@given(facts_st)
def test_empty_selector_matches_everything(f: ClusterFacts) -> None:
    assert matches(Selector(), f)


policies_st = st.lists(
    st.tuples(st.integers(-5, 5), selector_fields, st.lists(selector_fields, max_size=2)),
    max_size=6,
).map(
    lambda items: [
        policy(f"p{i}", priority, targets=targets, exclusions=exclusions)
        for i, (priority, targets, exclusions) in enumerate(items)
    ]
)


@settings(max_examples=150, deadline=None)
@given(policies_st, facts_st, st.randoms(use_true_random=False))
def test_applicable_is_deterministic_and_order_independent(
    policies: list[Policy], f: ClusterFacts, rng: Any
) -> None:
    first = applicable(policies, f, today=TODAY)
    assert applicable(policies, f, today=TODAY) == first
    shuffled = list(policies)
    rng.shuffle(shuffled)
    assert applicable(shuffled, f, today=TODAY) == first
    keys = [(-a.policy.spec.priority, a.policy.name) for a in first]
    assert keys == sorted(keys)


@settings(max_examples=150, deadline=None)
@given(policies_st, facts_st)
def test_exclusion_always_wins(policies: list[Policy], f: ClusterFacts) -> None:
    chosen = {a.policy.name for a in applicable(policies, f, today=TODAY)}
    for p in policies:
        excluded = any(matches(e, f) for e in p.spec.exclusions)
        expected = matches(p.spec.targets, f) and not excluded
        assert (p.name in chosen) == expected

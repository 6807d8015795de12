"""Selection: which policies apply to which cluster (pure, deterministic).

Called once per cluster by the engine (``applicable``) and once per run by the inventory
(``subscriptions_in_scope``, to list only the subscriptions some policy can target). Everything
here is a pure function of the policies, the cluster facts and the date.

Semantics (docs/contracts.md, Policy file):

- a selector matches when every field it gives matches; the items of one list are alternatives;
- names, resource groups and tag values are globs, matched case-insensitively as ARM does;
  locations ignore case and spaces (``West Europe`` is ``westeurope``); subscription ``"*"``
  matches any subscription; a tag matches when the cluster has the key (tag names are
  case-insensitive in ARM) and its value matches the glob, so ``"*"`` only requires the key;
- a policy applies when its targets match and none of its exclusions does (exclusion wins);
- ``Applicable`` pairs a policy with the first exemption whose ``cluster`` glob matches the
  cluster id and that has not expired (``expiresOn`` is the last exempt day).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from fleet.core.clusters import ClusterFacts
from fleet.policy import globs
from fleet.policy.loading import PolicySet
from fleet.policy.models import Exemption, Policy, Selector


@dataclass(frozen=True, slots=True)
class Applicable:
    """A policy that targets a cluster, and the exemption in force for it (None if judged)."""

    policy: Policy
    exemption: Exemption | None = None


def _location_key(location: str) -> str:
    return "".join(location.split()).lower()


def _any_glob(patterns: list[str], value: str) -> bool:
    return any(globs.match(pattern, value) for pattern in patterns)


def matches(selector: Selector, facts: ClusterFacts) -> bool:
    """True when every field ``selector`` gives matches ``facts``; an empty one matches all."""
    if selector.subscriptions is not None:
        subscription = facts.subscription_id.lower()
        if not any(s == "*" or s.lower() == subscription for s in selector.subscriptions):
            return False
    if selector.cluster_types is not None and facts.cluster_type not in selector.cluster_types:
        return False
    if selector.locations is not None:
        location = _location_key(facts.location)
        if not any(_location_key(item) == location for item in selector.locations):
            return False
    if selector.resource_groups is not None and not _any_glob(
        selector.resource_groups, facts.resource_group
    ):
        return False
    if selector.names is not None and not _any_glob(selector.names, facts.name):
        return False
    if selector.tags:
        # ARM tag names are case-insensitive; their values are matched by glob (also ignoring
        # case, like every fleet glob).
        tags = {key.lower(): value for key, value in facts.tags.items()}
        for key, pattern in selector.tags.items():
            value = tags.get(key.lower())
            if value is None or not globs.match(pattern, value):
                return False
    return True


def targets(policy: Policy, facts: ClusterFacts) -> bool:
    """True when ``policy`` targets the cluster: its targets match and no exclusion does."""
    spec = policy.spec
    if not matches(spec.targets, facts):
        return False
    return not any(matches(exclusion, facts) for exclusion in spec.exclusions)


def active_exemption(policy: Policy, facts: ClusterFacts, *, today: date) -> Exemption | None:
    """The first exemption of ``policy`` that covers the cluster and has not expired."""
    for exemption in policy.spec.exemptions:
        if exemption.expires_on is not None and exemption.expires_on < today:
            continue
        if globs.match(exemption.cluster, facts.id):
            return exemption
    return None


def applicable(
    policies: PolicySet | Iterable[Policy], facts: ClusterFacts, *, today: date
) -> list[Applicable]:
    """The policies that target the cluster, highest priority first (then by name)."""
    found = [
        Applicable(policy, active_exemption(policy, facts, today=today))
        for policy in policies
        if targets(policy, facts)
    ]
    found.sort(key=lambda a: (-a.policy.spec.priority, a.policy.name))
    return found


def subscriptions_in_scope(policies: PolicySet | Iterable[Policy]) -> frozenset[str] | None:
    """The subscriptions (lower-case ids) any policy can target; None means every visible one.

    None when some policy targets ``"*"`` or does not restrict subscriptions at all, since it
    could then match a cluster in any subscription.
    """
    scope: set[str] = set()
    for policy in policies:
        subscriptions = policy.spec.targets.subscriptions
        if subscriptions is None or "*" in subscriptions:
            return None
        scope.update(s.lower() for s in subscriptions)
    return frozenset(scope)

"""The window gate of a cluster a job means to write, with the reads it needs (docs/windows.md).

``window_of`` is the one place a job asks whether a cluster may be written now: preparation
asks it for every cluster with something to write, and ``steps.decide_cluster`` asks again right
before writing (a window may close while earlier waves run). The rules are
``fleet.plan.windows``'s; what is read here is only an AKS cluster's maintenance configurations,
and only when one of the policies owning its writes says ``respectAksMaintenance``. A closed
gate makes the cluster ``deferred`` (``deferral``): not written, never a failure, on the retry
list with its next window.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fleet.apply.outcomes import Category, ClusterOutcome, ClusterStatus
from fleet.azure.maintenance import read_maintenance
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts
from fleet.plan.actions import Action
from fleet.plan.windows import WindowState, gate_for, governing, needs_maintenance
from fleet.policy.loading import PolicySet

_CATEGORIES = {
    "window": Category.WINDOW,
    "freeze": Category.FREEZE,
    "aks-maintenance": Category.AKS_MAINTENANCE,
}


def window_of(
    session: AzureSession,
    policy_set: PolicySet,
    facts: ClusterFacts,
    actions: Iterable[Action],
    now: datetime,
) -> WindowState | None:
    """Whether ``actions`` may be written to the cluster at ``now`` (None: no time rules)."""
    policies = governing(policy_set.policies, {p for a in actions for p in a.policies})
    maintenance: list[dict[str, Any]] = []
    error: str | None = None
    if needs_maintenance(policies, facts.cluster_type):
        maintenance, error = read_maintenance(session, facts)
    gate = gate_for(policies, facts.cluster_type, maintenance, error)
    return gate.state(now) if gate else None


def deferral(cluster_id: str, name: str, wave: str, state: WindowState) -> ClusterOutcome:
    """The outcome of a cluster whose gate is closed."""
    assert state.category is not None
    return ClusterOutcome(
        cluster_id,
        name,
        wave,
        ClusterStatus.DEFERRED,
        state.describe(),
        _CATEGORIES[state.category],
        next_window=state.next_window,
    )

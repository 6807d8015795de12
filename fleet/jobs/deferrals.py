"""Holding back what a job may not write now: clusters outside their window, and the clusters
of an automatic run beyond its limit (docs/windows.md, docs/enforcement.md).

Called by ``fleet.jobs.preparing`` for every job before it is recorded, so both engines hold
back the same clusters: each becomes a ``deferred`` outcome carrying its facts and the actions
it would get, so a later ``--retry`` (or the next automatic run) writes exactly them. The
plan commands use ``plan_windows`` to show every cluster's window before anything is written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime

from fleet.apply import auto, gates
from fleet.apply.outcomes import Category, ClusterOutcome, ClusterStatus
from fleet.apply.spec import ClusterTask, JobSpec
from fleet.core.clusters import ClusterFacts
from fleet.core.ids import key
from fleet.jobs.pool import bounded_map
from fleet.jobs.runs import Environment
from fleet.plan.actions import Action, ClusterPlan
from fleet.plan.windows import WindowState
from fleet.policy.loading import PolicySet


def _windows(
    env: Environment,
    policy_set: PolicySet,
    items: Iterable[tuple[ClusterTask, list[Action]]],
    now: datetime,
) -> dict[str, WindowState]:
    """The window gate of each cluster with time rules (AKS maintenance read in parallel)."""

    def look(item: tuple[ClusterTask, list[Action]]) -> tuple[str, WindowState | None]:
        task, actions = item
        return task.facts.key, gates.window_of(env.session, policy_set, task.facts, actions, now)

    found: dict[str, WindowState] = {}
    for cluster, state in bounded_map(
        look,
        list(items),
        concurrency=env.settings.concurrency,
        cancel=threading.Event(),
        name="fleet-windows",
    ):
        if state is not None:
            found[cluster] = state
    return found


def _defer(spec: JobSpec, task: ClusterTask, outcome: ClusterOutcome) -> None:
    del spec.tasks[task.facts.key]
    outcome.facts, outcome.planned = task.facts, list(task.actions)
    spec.outcomes.append(outcome)


def defer_closed(env: Environment, spec: JobSpec, now: datetime) -> None:
    """Move the tasks whose window is closed at ``now`` to deferred outcomes."""
    tasks = list(spec.tasks.values())
    spec.windows = _windows(env, spec.policy_set, ((t, list(t.actions)) for t in tasks), now)
    for task in tasks:
        state = spec.windows.get(task.facts.key)
        if state is not None and not state.open:
            _defer(spec, task, gates.deferral(task.id, task.facts.name, "", state))


def limit_run(spec: JobSpec, now: datetime) -> None:
    """An automatic job writes at most ``maxClustersPerRun`` clusters; the rest wait for the
    next scheduled run (deferred, ``run-limit``)."""
    if spec.auto is None:
        return
    limit = spec.auto.limits.max_clusters_per_run
    schedule = None
    if spec.policy is not None:
        schedule = spec.policy_set.by_name(spec.policy).spec.remediation.schedule
    following = auto.next_run(schedule, now)
    for cluster in auto.over_limit([t.id for t in spec.tasks.values()], limit):
        task = spec.tasks[key(cluster)]
        waits = ClusterOutcome(
            task.id,
            task.facts.name,
            "",
            ClusterStatus.DEFERRED,
            f"over remediation.auto.maxClustersPerRun ({limit}): the next run writes it",
            Category.RUN_LIMIT,
            next_window=following,
        )
        _defer(spec, task, waits)


def plan_windows(
    env: Environment, policy_set: PolicySet, plans: list[ClusterPlan], now: datetime
) -> list[ClusterPlan]:
    """The plans with each writing cluster's window (``fleet plan``)."""
    writing = [
        (ClusterTask(ClusterFacts.of_id(p.cluster_id), tuple(p.actions)), list(p.actions))
        for p in plans
        if p.actions
    ]
    found = _windows(env, policy_set, writing, now)
    return [
        p.model_copy(update={"window": found[key(p.cluster_id)]})
        if key(p.cluster_id) in found
        else p
        for p in plans
    ]

"""The read right before a write: the fresh observation ``steps.decide_cluster`` judges.

A cluster the job's own planning observed moments ago is not read whole again: each resource
its actions write is read with one GET (``apply.read_target``: the guard against a second
writer is the resource itself, as ARM has it now) and put in place of what planning saw
(``with_targets``); the cluster's facts (power state, connectivity) and its other children are
planning's, at most ``PLANNED_MAX_AGE`` seconds old. A job whose planning is older (it waited
for an approval, a soak, a window), or that has no planning observation (a saved plan, a
retry, a resumed or Celery job whose worker did not plan it), or whose target reads fail,
reads the cluster whole (``fleet.azure.observe``: the cluster and its three lists).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleet.apply.spec import ClusterTask, JobSpec
from fleet.azure import apply
from fleet.azure.observe import observe
from fleet.core.errors import ArmCallFailed
from fleet.observe.observed import ObservedCluster
from fleet.plan.actions import Action, ActionKind

if TYPE_CHECKING:
    from fleet.apply.steps import Edges

log = logging.getLogger(__name__)

#: Seconds a planning observation stands in for the cluster's untouched children before a
#: write (beyond, the pre-write read is the full one: the cluster and its three lists).
PLANNED_MAX_AGE = 300.0

_KINDS = {
    ActionKind.PUT_EXTENSION: "extensions",
    ActionKind.DELETE_EXTENSION: "extensions",
    ActionKind.PUT_FLUX_CONFIG: "flux_configurations",
    ActionKind.DELETE_FLUX_CONFIG: "flux_configurations",
    ActionKind.DELETE_FLUX_V1: "source_control_configurations",
}


def with_targets(
    observed: ObservedCluster, targets: Sequence[tuple[Action, Mapping[str, Any] | None]]
) -> ObservedCluster:
    """``observed`` with each action's resource replaced by its fresh read (None: gone)."""
    lists: dict[str, list[Mapping[str, Any]]] = {}
    for action, fresh in targets:
        field_name = _KINDS[action.kind]
        items = lists.setdefault(field_name, list(getattr(observed, field_name)))
        name = action.resource_id.rstrip("/").rsplit("/", 1)[-1].lower()
        items[:] = [c for c in items if str(c.get("name") or "").lower() != name]
        if fresh is not None:
            items.append(fresh)
    changes: dict[str, Any] = {k: tuple(v) for k, v in lists.items()}
    return replace(observed, **changes)


def observe_before_write(edges: Edges, spec: JobSpec, task: ClusterTask) -> ObservedCluster:
    """The fresh observation a write is decided on (see the module docstring)."""
    base = spec.planned.get(task.facts.key)
    age = (datetime.now(UTC) - spec.planned_at).total_seconds() if spec.planned_at else None
    if (
        base is None
        or base.read_error is not None
        or age is None
        or not 0 <= age <= PLANNED_MAX_AGE
        or not task.actions
    ):
        # Whole means the cluster too: the task's facts may be a saved plan's or a first
        # job's (a retry), however freshly they were listed then.
        return observe(edges.session, task.facts, read_cluster=True)
    try:
        targets = [(a, apply.read_target(edges.session, a)) for a in task.actions]
    except ArmCallFailed as exc:
        log.info("cluster %s: %s; reading it whole", task.facts.name, exc)
        return observe(edges.session, task.facts, read_cluster=True)
    return with_targets(base, targets)

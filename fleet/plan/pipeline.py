"""The one per-cluster function: render, evaluate, plan.

The local engine (a thread pool in one process) and the Celery workers both call ``judge`` for
every cluster, so the two can never disagree about a verdict or a plan (docs/architecture.md). It
is pure: the callers read the cluster, resolve fingerprints, and store or apply what comes back.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from fleet.desired.fingerprints import Fingerprints
from fleet.desired.render import render
from fleet.desired.state import DesiredState
from fleet.evaluate.evaluate import evaluate
from fleet.evaluate.verdicts import Verdict
from fleet.evaluate.versions import Catalog
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import view
from fleet.observe.wellformed import checked
from fleet.plan import promotion
from fleet.plan.actions import ClusterPlan, SkipCategory, Skipped
from fleet.plan.planning import plan
from fleet.select.selection import Applicable


class Judgement(NamedTuple):
    """Everything fleet concludes about one cluster in one sweep."""

    verdict: Verdict
    desired: DesiredState
    plan: ClusterPlan


def judge(
    observed: ObservedCluster,
    applicable: Sequence[Applicable],
    *,
    catalog: Catalog,
    now: datetime,
    fingerprints: Fingerprints | None = None,
    nudge_stuck_versions: bool = False,
    fleet_ids: Collection[str] = (),
    target: promotion.Target | None = None,
) -> Judgement:
    """Render the cluster's desired state, judge the observation, plan the fix.

    ``nudge_stuck_versions`` is for remediation jobs: see ``fleet.plan.planning``.
    ``fleet_ids``: fleet's own principal, for ``FOREIGN_WRITER`` (``fleet.evaluate.attribution``).
    ``target`` is the version ``fleet.plan.promotion`` chose for a promoting cluster: it is
    pinned in the desired state, and a held promotion is noted among the plan's skips; without
    one (a sweep) a promoting cluster is pinned to the version it runs.
    An observation that is not well-formed ARM (``fleet.observe.wellformed``) is judged as a
    read error with the reason, never as what its damaged JSON would seem to say.
    """
    observed = checked(observed)
    desired = render(applicable, observed.facts)
    # Parse the observation once for both evaluation and planning.
    seen = view(observed, desired.extension.name if desired.extension else None)
    # Without a decision a promoted version stays where it is: no write may move it.
    desired = promotion.pin(
        desired, target.version if target is not None else promotion.running(seen)
    )
    verdict = evaluate(
        observed,
        desired,
        catalog=catalog,
        now=now,
        fingerprints=fingerprints,
        seen=seen,
        fleet_ids=fleet_ids,
    )
    planned = plan(
        observed,
        desired,
        verdict,
        fingerprints=fingerprints,
        seen=seen,
        nudge_stuck_versions=nudge_stuck_versions,
    )
    if target is not None and target.held and desired.extension is not None:
        held = Skipped(
            cluster_id=observed.facts.id,
            resource_id=desired.extension.resource,
            code=promotion.HELD_CODE,
            reason=target.reason,
            category=SkipCategory.PINNED,
        )
        planned = planned.model_copy(update={"skipped": [*planned.skipped, held]})
    return Judgement(verdict, desired, planned)

"""The planning sweep of a live remediation job: judge every targeted cluster, keep what a job
needs.

A ``PlanningSweep`` is a recorded sweep like any other (its verdicts are in the history), which
plans with the version nudge on and keeps per cluster the full facts (tags, for selector waves),
what it observed (from ARM or Resource Graph: the job judges its pre-write reads on top of it,
``fleet.apply.prewrite``) and, for clusters that cannot take writes now (offline, stopped), the
actions they would get if they were reachable: a later ``fleet remediate --retry`` re-applies
exactly that desired state.

Clusters whose extension a policy promotes (``versionPolicy: promote``) are also kept with
their observation and ``Standing``: once every cluster is judged, ``promoted`` decides their
versions from the whole fleet (``fleet.plan.promotion.targets``) and judges them again with
the version pinned (no second read). The sweep's recorded verdicts are those of the first
judgement, without the pin.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fleet.apply import readcount
from fleet.apply.choose import blocker
from fleet.apply.outcomes import Category
from fleet.apply.waves import IMPLICIT_WAVE, wave_index
from fleet.azure.observe import observe
from fleet.core.clusters import ClusterFacts
from fleet.core.ids import key
from fleet.evaluate.versions import Catalog
from fleet.jobs.sweep import Sweep
from fleet.jobs.work import Target
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import view
from fleet.plan import pipeline, promotion
from fleet.plan.actions import Action

#: Clusters that cannot take writes now but can later: their retry is planned.
_LATER = frozenset({Category.UNREACHABLE, Category.STOPPED})


def reachable(facts: ClusterFacts, now: datetime) -> ClusterFacts:
    """The same cluster as if it were connected and running (to plan its retry)."""
    if facts.cluster_type == "connectedClusters":
        return facts.model_copy(
            update={"connectivity_status": "Connected", "last_connectivity_time": now}
        )
    return facts.model_copy(update={"power_state": "Running"})


class PlanningSweep(Sweep):
    """A sweep that plans with the version nudge on and keeps what a job needs per cluster."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self.facts: dict[str, ClusterFacts] = {}
        self.would: dict[str, list[Action]] = {}
        #: Promoting clusters (``versionPolicy: promote``): what re-judging them needs.
        self._promoting: dict[str, tuple[ObservedCluster, Catalog, Target, promotion.Standing]] = {}
        #: What was observed of each cluster (the job keeps its tasks' for the pre-write read).
        self.observed: dict[str, ObservedCluster] = {}

    def _keep_promoting(
        self,
        observed: ObservedCluster,
        catalog: Catalog,
        target: Target,
        judgement: pipeline.Judgement,
    ) -> None:
        rule = judgement.desired.extension.promotion if judgement.desired.extension else None
        if rule is None:
            return
        policy = next(p for p in self.policy_set.policies if p.name == rule.policy)
        waves = policy.spec.remediation.rollout.waves or []
        index = wave_index(waves, observed.facts)
        found = promotion.standing(
            observed,
            judgement.desired,
            judgement.verdict,
            view(
                observed, judgement.desired.extension.name if judgement.desired.extension else None
            ),
            catalog,
            wave=index,
            wave_name=waves[index].name if index < len(waves) else IMPLICIT_WAVE,
        )
        if found is not None:
            with self._lock:
                self._promoting[found.key] = (observed, catalog, target, found)

    def promoted(self, judgements: Sequence[pipeline.Judgement]) -> list[pipeline.Judgement]:
        """The judgements with every promoting cluster judged again, pinned to the version
        ``fleet.plan.promotion`` chose for it from the whole fleet's standing."""
        if not self._promoting:
            return list(judgements)
        chosen = promotion.targets((s for *_, s in self._promoting.values()), self.now)
        out = []
        for judgement in judgements:
            kept = self._promoting.get(key(judgement.verdict.id))
            if kept is None:
                out.append(judgement)
                continue
            observed, catalog, target, found = kept
            out.append(self._judged(observed, target, catalog, chosen[found.key]))
        return out

    def _judged(
        self,
        observed: ObservedCluster,
        target: Target,
        catalog: Catalog,
        promoted: promotion.Target | None = None,
    ) -> pipeline.Judgement:
        """One judgement as a job plans: the version nudge on, ``promoted`` pinned if given."""
        return pipeline.judge(
            observed,
            list(target.applicable),
            catalog=catalog,
            now=self.now,
            fingerprints=self.fingerprints,
            nudge_stuck_versions=True,
            target=promoted,
            fleet_ids=self.session.fleet_ids(),
        )

    def _judge(self, target: Target) -> pipeline.Judgement:
        with readcount.phase("planning"):
            return self._plan(target)

    def _plan(self, target: Target) -> pipeline.Judgement:
        # A bulk inventory (Resource Graph) may carry the observation; the writes themselves
        # never trust it: every cluster is read from ARM again right before it is written.
        observed = target.observed
        if observed is None:
            observed = observe(self.session, target.facts, should_stop=self.cancel.is_set)
            if target.notes:
                observed = dataclasses.replace(observed, notes=(*observed.notes, *target.notes))
        raw = observed
        observed, catalog = self.catalogs.for_cluster(observed)

        judgement = self._judged(observed, target, catalog)
        self._keep_promoting(observed, catalog, target, judgement)
        would: list[Action] = []
        found = blocker(judgement)
        if found is not None and found[0] in _LATER:
            later = dataclasses.replace(observed, facts=reachable(observed.facts, self.now))
            would = list(self._judged(later, target, catalog).plan.actions)
        with self._lock:
            self.facts[observed.facts.key] = observed.facts
            self.observed[observed.facts.key] = raw
            if would:
                self.would[observed.facts.key] = would
        return judgement

"""Rollout arithmetic of a remediation job: which rollout applies, waves, the failure budget.

Pure functions over policies and cluster facts (no I/O), shared by the local engine and the
Celery workers, so both put every cluster in the same wave and stop at the same failure:

- ``choose_rollout``: the rollout of ``--policy NAME`` when given, otherwise the rollout of the
  highest-priority enforce policy that has something to write in the job (ties: by name);
- ``assign_waves``: ordered waves by selector or cumulative percentage. A cluster goes to the
  first wave that takes it. A percentage wave ``p`` takes the clusters whose *position* is below
  ``p``, where the position is a stable hash of the lower-cased cluster id mapped onto
  [0, 100): the same cluster always has the same position, whatever else is in the job, so a
  re-run (or a retry) lands it in the same wave, and ``percent: 10`` covers about 10 % of the
  fleet. Clusters no declared wave takes go to a final implicit wave (``IMPLICIT_WAVE``), so a
  job never silently leaves clusters out; a rollout without waves is that one wave;
- ``budget_exceeded``: a count budget ``n`` allows ``n`` failed clusters; a percentage ``p``
  allows failures up to ``p`` % of the job's clusters (those it means to write). The job stops
  as soon as failures are *above* that (``failures × 100 > p × clusters``, exact arithmetic).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from fleet.core.clusters import ClusterFacts
from fleet.policy.models import Policy, Rollout, Wave
from fleet.select.selection import matches

#: Name of the wave that takes the clusters no declared wave takes.
IMPLICIT_WAVE = "rest"
_SCALE = 2**64


def position(cluster_id: str) -> float:
    """A cluster's stable place in [0, 100): sha256 of the lower-cased id, scaled."""
    digest = hashlib.sha256(cluster_id.lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") * 100 / _SCALE


def takes(wave: Wave, facts: ClusterFacts) -> bool:
    """True when ``wave`` would take the cluster (if no earlier wave did)."""
    if wave.selector is not None:
        return matches(wave.selector, facts)
    assert wave.percent is not None
    return position(facts.id) < wave.percent


def wave_index(waves: Sequence[Wave], facts: ClusterFacts) -> int:
    """Index of the first wave taking the cluster; ``len(waves)`` is the implicit last wave."""
    for i, wave in enumerate(waves):
        if takes(wave, facts):
            return i
    return len(waves)


@dataclass(frozen=True)
class WavePlan:
    """One wave of a job and its clusters (ids in a stable order: by position)."""

    name: str
    index: int
    clusters: tuple[str, ...] = ()
    approval: bool = False
    implicit: bool = False
    #: Distinct approvers the wave's gate needs (``Wave.approvers``).
    approvers: int = 1


def assign_waves(clusters: Iterable[ClusterFacts], rollout: Rollout) -> list[WavePlan]:
    """Every cluster in exactly one wave; the declared waves in order, then the implicit one.

    Empty waves are kept (they show in the job as "no clusters") except the implicit one.
    Within a wave clusters are ordered by position, so the first clusters written are the
    same on every run.
    """
    waves = list(rollout.waves or [])
    buckets: list[list[ClusterFacts]] = [[] for _ in range(len(waves) + 1)]
    seen: set[str] = set()
    for facts in clusters:
        if facts.key in seen:
            continue
        seen.add(facts.key)
        buckets[wave_index(waves, facts)].append(facts)
    plans = []
    for i, wave in enumerate(waves):
        ordered = sorted(buckets[i], key=lambda f: (position(f.id), f.key))
        plans.append(
            WavePlan(
                wave.name,
                i,
                tuple(f.id for f in ordered),
                wave.approval or wave.approvers > 1,
                approvers=wave.approvers,
            )
        )
    rest = sorted(buckets[-1], key=lambda f: (position(f.id), f.key))
    if rest or not waves:
        plans.append(
            WavePlan(
                IMPLICIT_WAVE if waves else "all",
                len(waves),
                tuple(f.id for f in rest),
                False,
                implicit=bool(waves),
            )
        )
    return plans


# --- the failure budget ---------------------------------------------------------------------


def allowed_failures(budget: int | str, clusters: int) -> Fraction:
    """How many failed clusters the budget tolerates (a fraction for percentages)."""
    if isinstance(budget, int):
        return Fraction(budget)
    share = Fraction(budget.strip().rstrip("%").strip())
    return share * clusters / 100


def budget_exceeded(budget: int | str, failures: int, clusters: int) -> bool:
    """True when ``failures`` among a job of ``clusters`` clusters are above the budget."""
    return failures > allowed_failures(budget, clusters)


def describe_budget(budget: int | str, clusters: int) -> str:
    """``5% of 40 clusters: stops at 3 failed`` (failures are whole clusters)."""
    stops_at = int(allowed_failures(budget, clusters)) + 1
    if isinstance(budget, int):
        return f"{budget} failed cluster(s): stops at {stops_at} failed"
    return f"{budget} of {clusters} clusters: stops at {stops_at} failed"


# --- which rollout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutChoice:
    """The rollout a job follows and the policy it comes from (None: the default rollout)."""

    policy: str | None
    rollout: Rollout = field(default_factory=Rollout)
    why: str = ""


def choose_rollout(
    policies: Sequence[Policy], involved: Iterable[str], selected: str | None = None
) -> RolloutChoice:
    """``selected``'s rollout, else the highest-priority enforce policy among ``involved``.

    ``involved`` are the policies whose enforce mode allows some action of the job. Ties in
    priority are broken by name, so the choice never depends on file order.
    """
    by_name = {p.name: p for p in policies}
    if selected is not None:
        policy = by_name[selected]
        return RolloutChoice(policy.name, policy.spec.remediation.rollout, "--policy")
    candidates = [
        by_name[name]
        for name in set(involved)
        if name in by_name and by_name[name].spec.mode == "enforce"
    ]
    if not candidates:
        return RolloutChoice(None, Rollout(), "no enforce policy has anything to write")
    best = min(candidates, key=lambda p: (-p.spec.priority, p.name))
    return RolloutChoice(
        best.name,
        best.spec.remediation.rollout,
        f"highest priority ({best.spec.priority}) among the enforce policies of the job",
    )

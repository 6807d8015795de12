"""The saved plan (``FleetPlan``): what ``fleet plan --out`` and ``fleet remediate --dry-run --out``
write, and what ``fleet remediate --plan`` applies exactly.

One model and one writer (``build``) for both commands, so a plan means the same wherever it was
made. Like a Terraform plan it is a promise about a moment: each cluster carries the digest of
the state it was planned from, and a plan is refused whole when the policies changed (its
``policyRevision``) or any cluster's state moved on. It never holds a secret: actions carry
secret references, bodies have no protected values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fleet.core.errors import PlanUnreadable
from fleet.plan.actions import ClusterPlan

_CONFIG = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

KIND = "FleetPlan"
VERSION = 1


class PlanSummary(BaseModel):
    model_config = _CONFIG

    #: Clusters the plan writes.
    clusters: int
    create: int
    update: int
    delete: int
    #: Findings the plan deliberately leaves alone.
    skipped: int
    #: Targeted clusters with nothing to do (remediation plans).
    compliant: int | None = None


class PlanWave(BaseModel):
    model_config = _CONFIG

    name: str
    approval: bool = False
    implicit: bool = False
    #: Cluster names, in the order the wave writes them.
    clusters: list[str] = Field(default_factory=list)


class PlanRollout(BaseModel):
    model_config = _CONFIG

    policy: str | None = None
    why: str = ""
    failure_budget: int | str = 0
    max_concurrency: int = 1
    soak_seconds: int = 0
    waves: list[PlanWave] = Field(default_factory=list)


class FleetPlan(BaseModel):
    """A saved plan (``kind: FleetPlan``, ``version: 1``)."""

    model_config = _CONFIG

    kind: Literal["FleetPlan"] = "FleetPlan"
    version: Literal[1] = 1
    created_at: datetime
    sweep_id: str | None = None
    policy_revision: str
    policies: list[str] = Field(default_factory=list)
    subscriptions: list[str] | None = None
    summary: PlanSummary
    #: Every cluster with something to write or something deliberately left alone.
    clusters: list[ClusterPlan] = Field(default_factory=list)
    #: Remediation plans: the rollout and the waves the clusters would be written in.
    rollout: PlanRollout | None = None

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def build(
    plans: Iterable[ClusterPlan],
    *,
    created_at: datetime,
    sweep_id: str | None,
    policy_revision: str,
    policies: Sequence[str],
    subscriptions: Sequence[str] | None = None,
    compliant: int | None = None,
    rollout: PlanRollout | None = None,
) -> FleetPlan:
    """The plan of these clusters (those with neither actions nor skips are left out), in
    cluster id order, with its summary counted from them."""
    kept = sorted((p for p in plans if p.actions or p.skipped), key=lambda p: p.cluster_id.lower())
    counts = {"+": 0, "~": 0, "-": 0}
    for p in kept:
        for action in p.actions:
            counts[action.change] = counts.get(action.change, 0) + 1
    summary = PlanSummary(
        clusters=sum(1 for p in kept if p.actions),
        create=counts["+"],
        update=counts["~"],
        delete=counts["-"],
        skipped=sum(len(p.skipped) for p in kept),
        compliant=compliant,
    )
    return FleetPlan(
        created_at=created_at,
        sweep_id=sweep_id,
        policy_revision=policy_revision,
        policies=list(policies),
        subscriptions=list(subscriptions) if subscriptions is not None else None,
        summary=summary,
        clusters=kept,
        rollout=rollout,
    )


def load(document: object) -> FleetPlan:
    """A saved plan from its JSON; ``PlanUnreadable`` when it is none."""
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise PlanUnreadable(f"not a fleet plan (expected kind {KIND}, version {VERSION})")
    if document.get("version") != VERSION:
        raise PlanUnreadable(
            f"plan version {document.get('version')!r} is not one this fleet reads ({VERSION})"
        )
    try:
        return FleetPlan.model_validate(document)
    except ValueError as exc:
        raise PlanUnreadable(f"the plan is not valid: {exc}") from None

"""A remediation job as data: what was asked for (``JobRequest``) and what it will do (``JobSpec``).

``JobRequest`` is what a person (the CLI), a worker (the Celery start task) or the service asks
for: a live job from the fleet's fresh plan, exactly a saved plan, or an earlier job's retry
list, with the job's rails (``--policy``, ``--max-clusters``, timeouts). It travels as JSON to a
worker and is turned into a ``JobSpec`` by one function (``fleet.jobs.preparing.prepare``) on
either engine, so the live / plan / retry dispatch exists once.

A ``JobSpec`` is decided before the first write and never changes while the job runs (several
threads and processes read it): the clusters to write (``ClusterTask``: facts, the actions, the
wave), the clusters left alone and why, and the rollout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fleet.apply.auto import AutoJob
from fleet.apply.outcomes import ClusterOutcome, ClusterStatus
from fleet.apply.waves import RolloutChoice, WavePlan
from fleet.core.clusters import ClusterFacts
from fleet.core.duties import Actor
from fleet.core.ids import key
from fleet.observe.observed import ObservedCluster
from fleet.plan.actions import Action
from fleet.plan.windows import WindowState
from fleet.policy.loading import PolicySet

KIND = "remediation"


class Mode(StrEnum):
    LIVE = "live"  # write the fresh plan of every cluster
    PLAN = "plan"  # write exactly a saved plan, refusing clusters that changed since
    RETRY = "retry"  # write the stored actions of an earlier job's failed/skipped clusters


@dataclass(frozen=True)
class JobRequest:
    """What a remediation job is asked to do (JSON-safe: a worker receives it as a message)."""

    mode: Mode = Mode.LIVE
    #: Plan mode: the saved ``FleetPlan`` document.
    plan_document: dict[str, Any] | None = None
    plan_file: str | None = None
    #: Retry mode: the job whose failed, left-for-retry and not-started clusters to re-apply.
    retry_of: str | None = None
    #: ``--policy NAME``: only that policy's resources (and its rollout).
    policy: str | None = None
    max_clusters: int | None = None
    approval_timeout: float = 3600.0
    operation_timeout: float = 1800.0
    #: Where the policies came from (``fromFile`` references resolve against them).
    policy_paths: tuple[str, ...] = ()
    #: Who asks (the job's creator: ``fleet.core.duties`` keeps them from approving it).
    requested_by: Actor | None = None
    #: An automatic job (``remediation.auto`` after a scheduled sweep): what it may do.
    auto: AutoJob | None = None

    def __post_init__(self) -> None:
        if self.mode is Mode.PLAN and self.plan_document is None:
            raise ValueError("a plan job needs the saved plan document")
        if self.mode is Mode.RETRY and not self.retry_of:
            raise ValueError("a retry job needs the job to retry")

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "planDocument": self.plan_document,
            "planFile": self.plan_file,
            "retryOf": self.retry_of,
            "policy": self.policy,
            "maxClusters": self.max_clusters,
            "approvalTimeout": self.approval_timeout,
            "operationTimeout": self.operation_timeout,
            "policyPaths": list(self.policy_paths),
            "requestedBy": self.requested_by.to_json() if self.requested_by else None,
            "auto": self.auto.to_json() if self.auto else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRequest:
        return cls(
            mode=Mode(data.get("mode") or "live"),
            plan_document=data.get("planDocument"),
            plan_file=data.get("planFile"),
            retry_of=data.get("retryOf"),
            policy=data.get("policy"),
            max_clusters=data.get("maxClusters"),
            approval_timeout=float(data.get("approvalTimeout") or 3600.0),
            operation_timeout=float(data.get("operationTimeout") or 1800.0),
            policy_paths=tuple(data.get("policyPaths") or ()),
            requested_by=Actor.from_json(data.get("requestedBy")),
            auto=AutoJob.from_json(data.get("auto")),
        )


@dataclass(frozen=True)
class ClusterTask:
    """One cluster a job means to write: its facts, the actions, its wave."""

    facts: ClusterFacts
    actions: tuple[Action, ...] = ()
    wave: str = ""
    #: The saved plan's digest of the observed state (plan mode only).
    observed_digest: str = ""

    @property
    def id(self) -> str:
        return self.facts.id

    def record(self) -> dict[str, Any]:
        """The ``job_clusters`` row of this task (actions hold secret *references* only)."""
        return {
            "clusterId": self.facts.id,
            "name": self.facts.name,
            "wave": self.wave or None,
            "status": ClusterStatus.PENDING.value,
            "facts": self.facts.model_dump(mode="json"),
            "actions": [a.model_dump(mode="json", by_alias=True) for a in self.actions],
            "outcome": {"observedDigest": self.observed_digest} if self.observed_digest else None,
        }


def left_alone_record(o: ClusterOutcome) -> dict[str, Any]:
    """The ``job_clusters`` row of a cluster the job leaves alone from the start."""
    return {
        "clusterId": o.cluster_id,
        "name": o.name,
        "wave": o.wave or None,
        "status": o.status.value,
        "reason": o.reason,
        "outcome": {
            "category": o.category.value if o.category else None,
            "nextWindow": o.next_window.isoformat() if o.next_window else None,
        },
        "facts": o.facts.model_dump(mode="json") if o.facts is not None else None,
        "actions": [a.model_dump(mode="json", by_alias=True) for a in o.planned],
    }


@dataclass
class JobSpec:
    """Everything a job does, decided before the first write (read-only once recorded)."""

    id: str
    mode: Mode
    policy_set: PolicySet
    choice: RolloutChoice
    waves: list[WavePlan]
    tasks: dict[str, ClusterTask]
    #: Clusters the job leaves alone (skipped or for retry), decided at preparation.
    outcomes: list[ClusterOutcome] = field(default_factory=list)
    #: Targeted clusters with nothing to do.
    compliant: int = 0
    #: ``--policy NAME``: only that policy's resources.
    policy: str | None = None
    #: Fingerprints of the current value of every secret reference (never values).
    desired_fingerprints: dict[str, str | None] = field(default_factory=dict)
    sweep_id: str | None = None
    retry_of: str | None = None
    plan_file: str | None = None
    policy_paths: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Which engine runs it: ``local`` or ``celery``.
    engine: str = "local"
    #: True when the job continues after its process died (``fleet remediate --resume``):
    #: a saved plan's clusters are then judged by what is still missing, not by their digest.
    resumed: bool = False
    #: Who started the job (``JobRequest.requested_by``).
    requested_by: Actor | None = None
    #: An automatic job's limits (``JobRequest.auto``): ``choose`` keeps to them at write time.
    auto: AutoJob | None = None
    #: The window gate of each cluster with time rules, by key, as preparation found it.
    windows: dict[str, WindowState] = field(default_factory=dict)
    #: The planning sweep's observation of each task's cluster, by key, and when planning
    #: began (real time). Not recorded: a process that did not plan the job reads its
    #: clusters whole before writing them (``fleet.apply.prewrite``).
    planned: dict[str, ObservedCluster] = field(default_factory=dict)
    planned_at: datetime | None = None

    def task_of(self, cluster_id: str) -> ClusterTask:
        return self.tasks[key(cluster_id)]

    def waves_with_work(self) -> list[WavePlan]:
        return [w for w in self.waves if w.clusters]

    def options(self) -> dict[str, Any]:
        """The job's ``options`` in the history database: enough to rebuild it anywhere."""
        rollout = self.choice.rollout
        return {
            "mode": self.mode.value,
            "engine": self.engine,
            "policies": self.policy_paths,
            "policy": self.policy,
            "planFile": self.plan_file,
            "retryOf": self.retry_of,
            "compliant": self.compliant,
            "rolloutPolicy": self.choice.policy,
            "rolloutWhy": self.choice.why,
            "rollout": rollout.model_dump(mode="json", by_alias=True, exclude_none=True),
            "waves": [
                {
                    "name": w.name,
                    "clusters": len(w.clusters),
                    "approval": w.approval,
                    "approvers": w.approvers,
                    "implicit": w.implicit,
                }
                for w in self.waves
            ],
            "createdBy": self.requested_by.to_json() if self.requested_by else None,
            "auto": self.auto.to_json() if self.auto else None,
        }

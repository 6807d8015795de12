"""The rules of a remediation job's life, shared by both engines: how it stops and how it ends.

Pure functions and values, no I/O. The local runner (``fleet.jobs.local``) and the Celery tasks
(``workers.remediation_flow``) only schedule work; every decision about the job itself is made
here, so the same job stopped the same way ends with the same status, message, exit code and
history rows on either engine:

- ``StopReason``: why a job stops taking new clusters (cancelled, the kill switch, the failure
  budget, an approval that timed out), with its one message; the first reason found wins;
- ``Budget``: the failure budget of a job, and the stop it causes;
- ``not_started``: the outcome of a cluster the job never reached;
- ``final_status`` and ``exit_code``: how a job ends, and what the CLI returns for it;
- ``JobResult``: the counters, the retry list and the job report (``fleet remediate -o json``,
  the job's ``summary`` in the history database), built the same way for both engines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fleet.apply.outcomes import (
    RETRY_STATUSES,
    Category,
    ClusterOutcome,
    ClusterStatus,
)
from fleet.apply.spec import KIND, ClusterTask, JobSpec
from fleet.apply.waves import budget_exceeded, describe_budget
from fleet.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from fleet.core.ids import key


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting-approval"
    SUCCEEDED = "succeeded"  # every cluster of the job fixed
    COMPLETED = "completed"  # ran to the end; some clusters failed (within budget) or wait
    STOPPED = "stopped"  # the failure budget was exceeded, or an approval timed out
    CANCELLED = "cancelled"  # cancelled by a person, or by the kill switch
    FAILED = "failed"  # the job itself broke (an error, not a cluster)


#: Statuses of a job that is over.
ENDED = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.COMPLETED,
        JobStatus.STOPPED,
        JobStatus.CANCELLED,
        JobStatus.FAILED,
    }
)

#: What ``fleet remediate`` (and ``fleet jobs`` commands that wait) exit with, per status.
EXIT_CODES: Mapping[JobStatus, int] = {
    JobStatus.SUCCEEDED: EXIT_OK,
    JobStatus.COMPLETED: EXIT_OK,
    JobStatus.STOPPED: EXIT_FAILED,
    JobStatus.FAILED: EXIT_FAILED,
    JobStatus.CANCELLED: EXIT_INTERRUPTED,
}


def exit_code(status: JobStatus) -> int:
    return EXIT_CODES.get(status, 0)


class StopKind(StrEnum):
    CANCELLED = "cancelled"
    KILL_SWITCH = "kill-switch"
    FAILURE_BUDGET = "failure-budget"
    APPROVAL_TIMEOUT = "approval-timeout"


#: The status a job ends with when it stopped for this reason.
_STOP_STATUS: Mapping[StopKind, JobStatus] = {
    StopKind.CANCELLED: JobStatus.CANCELLED,
    StopKind.KILL_SWITCH: JobStatus.CANCELLED,
    StopKind.FAILURE_BUDGET: JobStatus.STOPPED,
    StopKind.APPROVAL_TIMEOUT: JobStatus.STOPPED,
}


@dataclass(frozen=True)
class StopReason:
    """Why a job stopped taking new clusters (in-flight clusters finish and are verified)."""

    kind: StopKind
    message: str

    @classmethod
    def cancelled(cls) -> StopReason:
        return cls(StopKind.CANCELLED, "cancelled")

    @classmethod
    def kill_switch(cls, description: str) -> StopReason:
        """``description``: ``fleet.jobs.killswitch.State.describe()`` (who, when, why)."""
        return cls(StopKind.KILL_SWITCH, description)

    @classmethod
    def failure_budget(cls, wave: str, failures: int, budget: int | str, total: int) -> StopReason:
        return cls(
            StopKind.FAILURE_BUDGET,
            f"failure budget exceeded in wave {wave!r}: {failures} failed, budget "
            f"{describe_budget(budget, total)}",
        )

    @classmethod
    def approval_timeout(cls, wave: str, seconds: float) -> StopReason:
        return cls(
            StopKind.APPROVAL_TIMEOUT,
            f"approval of wave {wave!r} timed out after {seconds:g}s",
        )

    @property
    def status(self) -> JobStatus:
        return _STOP_STATUS[self.kind]

    @property
    def category(self) -> Category:
        """The category of the clusters the job did not reach because of it."""
        return Category(self.kind.value)

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> StopReason | None:
        if not data:
            return None
        return cls(StopKind(data["kind"]), str(data["message"]))


def first(current: StopReason | None, new: StopReason | None) -> StopReason | None:
    """The reason a job stops is the first one found; later ones do not replace it."""
    return current if current is not None else new


@dataclass(frozen=True)
class Budget:
    """A job's failure budget: how many of its ``total`` clusters may fail."""

    limit: int | str
    total: int

    def exceeded(self, failures: int) -> bool:
        return budget_exceeded(self.limit, failures, self.total)

    def stop(self, wave: str, failures: int) -> StopReason | None:
        """The stop ``failures`` failed clusters cause after a cluster of ``wave``, if any."""
        if not self.exceeded(failures):
            return None
        return StopReason.failure_budget(wave, failures, self.limit, self.total)

    def describe(self) -> str:
        return describe_budget(self.limit, self.total)

    @classmethod
    def of(cls, spec: JobSpec) -> Budget:
        return cls(spec.choice.rollout.failure_budget, len(spec.tasks))


def approval_expired(wave: str, waited: float, timeout: float) -> StopReason | None:
    """The stop when a wave has waited ``waited`` seconds of ``timeout`` for its approval."""
    return StopReason.approval_timeout(wave, timeout) if waited >= timeout else None


def not_started(task: ClusterTask, stop: StopReason | None) -> ClusterOutcome:
    """The outcome of a cluster the job did not reach (it is on the retry list)."""
    return ClusterOutcome(
        task.id,
        task.facts.name,
        task.wave,
        ClusterStatus.NOT_STARTED,
        stop.message if stop is not None else "the job stopped",
        stop.category if stop is not None else Category.CANCELLED,
    )


def locked(task: ClusterTask, holder: str | None) -> ClusterOutcome:
    """The outcome of a cluster another job is writing: left for retry, nothing written."""
    return ClusterOutcome(
        task.id,
        task.facts.name,
        task.wave,
        ClusterStatus.RETRY,
        f"another job ({holder}) is writing this cluster",
        Category.LOCKED,
    )


def internal_error(task: ClusterTask, exc: BaseException) -> ClusterOutcome:
    """A bug while handling one cluster fails that cluster, never the job."""
    return ClusterOutcome(
        task.id,
        task.facts.name,
        task.wave,
        ClusterStatus.FAILED,
        f"internal error: {exc}",
        Category.ERROR,
    )


def after_resume(prior: ClusterOutcome, fresh: ClusterOutcome) -> ClusterOutcome:
    """A resumed cluster's outcome: what its first run wrote, then what this run did. A
    cluster the first run had written in full has nothing left to write now: it is verified
    like any written cluster instead of being skipped as compliant."""
    fresh.writes[:0] = prior.writes
    fresh.applied[:0] = prior.applied
    if fresh.status is ClusterStatus.SKIPPED and fresh.category is Category.COMPLIANT:
        fresh.settle(ClusterStatus.APPLIED, None, None)
    return fresh


def final_status(
    stop: StopReason | None, outcomes: Iterable[ClusterOutcome], total: int
) -> JobStatus:
    """How a job ends: its stop reason's status, else succeeded when every cluster it meant to
    write is fixed (none deferred to a later window), else completed."""
    if stop is not None:
        return stop.status
    statuses = Counter(o.status for o in outcomes)
    done = (
        statuses[ClusterStatus.FIXED] == total
        and not statuses[ClusterStatus.FAILED]
        and not statuses[ClusterStatus.DEFERRED]
    )
    return JobStatus.SUCCEEDED if done else JobStatus.COMPLETED


def wave_counts(spec: JobSpec, outcomes: Mapping[str, ClusterOutcome]) -> dict[str, dict[str, int]]:
    """Statuses per wave, from the clusters' outcomes (keys: ``fleet.core.ids.key``)."""
    counts: dict[str, dict[str, int]] = {}
    for wave in spec.waves:
        if not wave.clusters:
            continue
        tally = Counter(
            outcomes[task.facts.key].status.value
            for task in (spec.task_of(c) for c in wave.clusters)
            if task.facts.key in outcomes
        )
        counts[wave.name] = dict(sorted(tally.items()))
    return counts


@dataclass
class JobResult:
    """A finished (or stopped) job: status, why it stopped, and every cluster's outcome."""

    spec: JobSpec
    status: JobStatus
    outcomes: dict[str, ClusterOutcome]
    stop: StopReason | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    principal: str | None = None

    @property
    def stop_reason(self) -> str | None:
        return self.stop.message if self.stop is not None else None

    @property
    def exit_code(self) -> int:
        return exit_code(self.status)

    def counts(self) -> dict[str, int]:
        c = Counter(o.status.value for o in self.outcomes.values())
        writes = sum(len(o.writes) for o in self.outcomes.values())
        return {
            "toWrite": len(self.spec.tasks),
            "fixed": c["fixed"],
            "failed": c["failed"],
            "skipped": c["skipped"],
            "retry": c["retry"],
            "deferred": c["deferred"],
            "notStarted": c["not-started"] + c["pending"],
            "compliant": self.spec.compliant,
            "writes": writes,
        }

    def retry_list(self) -> list[str]:
        return sorted(
            (
                o.cluster_id
                for o in self.outcomes.values()
                if o.status in RETRY_STATUSES or o.status is ClusterStatus.PENDING
            ),
            key=str.lower,
        )

    def finish(self, stop: StopReason | None) -> list[ClusterOutcome]:
        """End the job: clusters still pending are not started (returned, to be recorded);
        the status follows from the stop reason and the outcomes."""
        settled = []
        for o in self.outcomes.values():
            if o.status is ClusterStatus.PENDING:
                o.settle(
                    ClusterStatus.NOT_STARTED,
                    stop.message if stop is not None else "the job stopped",
                    stop.category if stop is not None else Category.CANCELLED,
                )
                settled.append(o)
        self.stop = stop
        self.status = final_status(stop, self.outcomes.values(), len(self.spec.tasks))
        self.finished_at = datetime.now(UTC)
        return settled

    def report(self, *, clusters: bool = True) -> dict[str, Any]:
        """The JSON summary (``fleet remediate -o json``). ``clusters=False`` leaves out the
        per-cluster list (the job's ``summary`` in the history: ``job_clusters`` has them)."""
        spec = self.spec
        rollout = spec.choice.rollout
        per_wave = wave_counts(spec, self.outcomes)
        out: dict[str, Any] = {
            "job": {
                "id": spec.id,
                "kind": KIND,
                "status": self.status.value,
                "mode": spec.mode.value,
                "engine": spec.engine,
                "startedAt": self.started_at.isoformat(),
                "finishedAt": self.finished_at.isoformat() if self.finished_at else None,
                "principal": self.principal,
                "policyRevision": spec.policy_set.revision,
                "policy": spec.policy,
                "sweepId": spec.sweep_id,
                "retryOf": spec.retry_of,
                "stopReason": self.stop_reason,
                "stopKind": self.stop.kind.value if self.stop is not None else None,
                "rollout": {
                    "policy": spec.choice.policy,
                    "why": spec.choice.why,
                    "failureBudget": describe_budget(rollout.failure_budget, len(spec.tasks)),
                    "maxConcurrency": rollout.max_concurrency,
                    "soakSeconds": rollout.soak_seconds,
                },
            },
            "summary": self.counts(),
            "waves": [
                {
                    "name": w.name,
                    "clusters": len(w.clusters),
                    "approval": w.approval,
                    "approvers": w.approvers,
                    "implicit": w.implicit,
                    **per_wave.get(w.name, {}),
                }
                for w in spec.waves
            ],
        }
        if clusters:
            out["clusters"] = sorted(
                (o.to_json() for o in self.outcomes.values()), key=lambda c: str(c["id"]).lower()
            )
            out["retry"] = self.retry_list()
        return out


def start_result(spec: JobSpec, *, principal: str | None) -> JobResult:
    """A running job's result: the clusters left alone at preparation, the others pending."""
    result = JobResult(spec, JobStatus.RUNNING, {}, principal=principal)
    for o in spec.outcomes:
        result.outcomes[key(o.cluster_id)] = o
    for t in spec.tasks.values():
        result.outcomes[t.facts.key] = ClusterOutcome(
            t.id, t.facts.name, t.wave, ClusterStatus.PENDING
        )
    return result

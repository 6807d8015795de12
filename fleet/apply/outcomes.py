"""Where one cluster of a remediation job stands: its status, why, and the ARM writes it took.

Statuses and categories are types, set where they are decided (the planner's skip categories,
the job's own decisions, the stop reason of a cluster that was never reached), so no module ever
reads a category back out of a reason's prose. One ``ClusterOutcome`` has three forms, each
written in one place here: ``to_json`` (the job report), ``record`` (its row in the history
database) and ``to_state`` / ``from_state`` (what the distributed engine keeps in Redis between
tasks). None of them holds a secret: actions carry secret *references*, errors are ARM's code and
bounded message, redacted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fleet.apply import verify
from fleet.core import redact
from fleet.core.clusters import ClusterFacts
from fleet.core.failures import ArmFailure
from fleet.plan.actions import Action, SkipCategory, Skipped


class ClusterStatus(StrEnum):
    PENDING = "pending"  # in the job, its wave has not run yet
    APPLIED = "applied"  # written, waiting for the wave's verification
    FIXED = "fixed"  # written and verified
    FAILED = "failed"  # a write or the verification failed (counts against the budget)
    SKIPPED = "skipped"  # deliberately not written (the reason says why); never a failure
    RETRY = "retry"  # unreachable, stopped or unreadable: not written, listed for retry
    NOT_STARTED = "not-started"  # the job stopped (budget, cancel, approval) before it
    #: Outside its window (a freeze, AKS maintenance) or over an automatic run's limit: not
    #: written, never a failure, listed for retry with its next window.
    DEFERRED = "deferred"


#: Statuses a later ``fleet remediate --retry JOB`` picks up.
RETRY_STATUSES = frozenset(
    {
        ClusterStatus.FAILED,
        ClusterStatus.RETRY,
        ClusterStatus.NOT_STARTED,
        ClusterStatus.DEFERRED,
    }
)
#: Statuses that end a cluster's part in a job.
FINAL_STATUSES = frozenset(
    {
        ClusterStatus.FIXED,
        ClusterStatus.FAILED,
        ClusterStatus.SKIPPED,
        ClusterStatus.RETRY,
        ClusterStatus.NOT_STARTED,
        ClusterStatus.DEFERRED,
    }
)


class Category(StrEnum):
    """Why a cluster ended the way it did, in one word (stored with its outcome)."""

    # The planner's reasons to leave a resource alone (``fleet.plan.actions.SkipCategory``).
    UNREACHABLE = "unreachable"
    STOPPED = "stopped"
    READ_ERROR = "read-error"
    CONFLICT = "conflict"
    FLUX_V1 = "flux-v1"
    AUDIT = "audit"
    IMMUTABLE = "immutable"
    PINNED = "pinned"
    IN_PROGRESS = "in-progress"
    NOT_WRITABLE = "not-writable"
    UNMANAGED = "unmanaged"
    POLICY_ERROR = "policy-error"
    INELIGIBLE = "ineligible"  # CLUSTER_INELIGIBLE: a person must act (re-connect, upgrade...)
    # The job's own decisions about a cluster.
    COMPLIANT = "compliant"  # nothing (left) to write
    STALE = "stale"  # a saved plan no longer matches the cluster
    DEPENDS = "depends"  # --policy would need another policy's write first
    GUARD = "guard"  # a retried action is no longer allowed by today's policies
    NO_LONGER_TARGETED = "no-longer-targeted"
    LOCKED = "locked"  # another job is writing the cluster
    AUTO_LIMITS = "auto-limits"  # an automatic job may not make this change (remediation.auto)
    # Deferred (``fleet.plan.windows``): the gate that closed, or the run's cluster limit.
    WINDOW = "window"
    FREEZE = "freeze"
    AKS_MAINTENANCE = "aks-maintenance"
    RUN_LIMIT = "run-limit"
    # Failures (count against the failure budget).
    SECRET = "secret"  # a secret reference could not be read at write time
    WRITE = "write"  # ARM refused or failed a write
    VERIFY = "verify"  # written, but ARM does not show what was written
    ERROR = "error"  # a bug in fleet while handling the cluster
    # Never reached: the job stopped first (the values of ``fleet.apply.lifecycle.StopKind``).
    CANCELLED = "cancelled"
    KILL_SWITCH = "kill-switch"
    FAILURE_BUDGET = "failure-budget"
    APPROVAL_TIMEOUT = "approval-timeout"

    @classmethod
    def of_skip(cls, skip: SkipCategory) -> Category:
        return cls(skip.value)


#: The order in which categories explain a cluster best (the first one found is shown).
EXPLAINS_BEST = (
    Category.INELIGIBLE,
    Category.UNREACHABLE,
    Category.STOPPED,
    Category.READ_ERROR,
    Category.CONFLICT,
    Category.FLUX_V1,
    Category.DEPENDS,
    Category.IMMUTABLE,
    Category.PINNED,
    Category.IN_PROGRESS,
    Category.POLICY_ERROR,
    Category.AUDIT,
    Category.NOT_WRITABLE,
    Category.UNMANAGED,
)


class WriteOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"  # the operation did not end within the job's operation timeout


@dataclass
class WriteResult:
    """How one ARM write of a job ended."""

    action: Action
    outcome: WriteOutcome
    write_id: int | None = None
    error: ArmFailure | None = None
    correlation_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is WriteOutcome.SUCCEEDED

    def describe(self) -> str:
        text = f"{self.action.kind.value} {verify.label(self.action)}: {self.outcome.value}"
        if self.error is not None:
            text += f" ({self.error.code}: {self.error.message})"
        return text

    def to_state(self) -> dict[str, Any]:
        return {
            "action": self.action.model_dump(mode="json", by_alias=True),
            "outcome": self.outcome.value,
            "writeId": self.write_id,
            "error": dataclasses.asdict(self.error) if self.error else None,
            "correlationId": self.correlation_id,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> WriteResult:
        return cls(
            Action.model_validate(data["action"]),
            WriteOutcome(data["outcome"]),
            data.get("writeId"),
            ArmFailure(**data["error"]) if data.get("error") else None,
            data.get("correlationId"),
        )


@dataclass
class ClusterOutcome:
    """Where one cluster of a job stands (after writing, after verifying, or left alone)."""

    cluster_id: str
    name: str
    wave: str
    status: ClusterStatus
    reason: str | None = None
    category: Category | None = None
    #: Actions written successfully (what verification checks).
    applied: list[Action] = field(default_factory=list)
    writes: list[WriteResult] = field(default_factory=list)
    #: ARM's error codes of failed writes, for the summary.
    errors: list[str] = field(default_factory=list)
    #: For clusters left for retry at preparation: their facts and the actions a retry sends
    #: (planned as if the cluster were reachable), so the retry re-applies this very state.
    facts: ClusterFacts | None = None
    planned: list[Action] = field(default_factory=list)
    #: For clusters left alone at preparation: the planner's reasons, for the saved plan.
    skips: list[Skipped] = field(default_factory=list)
    #: Deferred clusters: when they may be written next (None: not known).
    next_window: datetime | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def settle(self, status: ClusterStatus, reason: str | None, category: Category | None) -> None:
        self.status, self.reason, self.category = status, reason, category

    def add_write(self, write: WriteResult) -> bool:
        """Add a finished write; False when the cluster must stop there (it failed).

        Later actions depend on earlier ones (Flux v1 gone before the extension, the extension
        before its configurations), so a cluster stops at its first failed write.
        """
        self.writes.append(write)
        if not write.ok:
            self.settle(ClusterStatus.FAILED, write.describe(), Category.WRITE)
            if write.error is not None:
                self.errors.append(write.error.code)
            return False
        self.applied.append(write.action)
        return True

    # -- the three forms ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """One entry of the job report's ``clusters``."""
        return {
            "id": self.cluster_id,
            "name": self.name,
            "wave": self.wave or None,
            "status": self.status.value,
            "category": self.category.value if self.category else None,
            "reason": redact.text(self.reason) if self.reason else None,
            "nextWindow": _iso(self.next_window),
            "writes": [
                {
                    "action": w.action.kind.value,
                    "resource": w.action.resource_id,
                    "outcome": w.outcome.value,
                    "errorCode": w.error.code if w.error else None,
                    "errorMessage": redact.text(w.error.message) if w.error else None,
                    "correlationId": w.correlation_id,
                }
                for w in self.writes
            ],
        }

    def record(self) -> dict[str, Any]:
        """The fields of its ``job_clusters`` row that change while the job runs."""
        return {
            "status": self.status.value,
            "reason": redact.text(self.reason) if self.reason else None,
            "outcome": {
                "category": self.category.value if self.category else None,
                "errors": list(self.errors),
                "writes": [w.write_id for w in self.writes],
                "nextWindow": _iso(self.next_window),
            },
        }

    def to_state(self) -> dict[str, Any]:
        """Everything a later task needs to continue or verify the cluster."""
        data = self.to_json()
        data["errors"] = list(self.errors)
        data["applied"] = [a.model_dump(mode="json", by_alias=True) for a in self.applied]
        data["writeResults"] = [w.to_state() for w in self.writes]
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> ClusterOutcome:
        category = data.get("category")
        return cls(
            data["id"],
            data["name"],
            data.get("wave") or "",
            ClusterStatus(data["status"]),
            data.get("reason"),
            Category(category) if category else None,
            applied=[Action.model_validate(a) for a in data.get("applied") or []],
            writes=[WriteResult.from_state(w) for w in data.get("writeResults") or []],
            errors=list(data.get("errors") or []),
            next_window=_moment(data.get("nextWindow")),
        )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None

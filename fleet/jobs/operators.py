"""What people do to a recorded remediation job: approve a wave, ask it to stop.

One implementation for every way in (``fleet jobs approve|cancel`` on this machine, the API's
``POST /api/v1/jobs/{id}/approve|cancel``), so the same rules hold whoever asks: a job that
has ended takes neither; the wave approved is the one the job waits for unless one is named
(a named wave may be approved ahead); the job's creator never approves it, and a wave may need
several distinct approvers (``fleet.core.duties``, enforced by ``History.approve``). Each
action lands in the audit trail under its actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleet.apply.lifecycle import JobStatus
from fleet.core.duties import Actor, approvers_of
from fleet.core.errors import NotApprovable
from fleet.record.history import History
from fleet.record.jobs import TERMINAL_STATUSES, creator_of, required_approvers


@dataclass(frozen=True)
class Approval:
    """Where a wave's approval stands after an approval was recorded."""

    job: str
    wave: str
    approvers: list[str]
    required: int

    @property
    def complete(self) -> bool:
        return len(self.approvers) >= self.required

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "wave": self.wave,
            "approvals": len(self.approvers),
            "required": self.required,
            "approved": self.complete,
        }


def _ended(job: dict[str, Any]) -> bool:
    return job["status"] in TERMINAL_STATUSES


def waiting_for(job: dict[str, Any]) -> str | None:
    """The wave a job waits at, if it waits for an approval."""
    if job.get("status") != JobStatus.AWAITING_APPROVAL.value:
        return None
    progress = (job.get("summary") or {}).get("progress") or {}
    found = progress.get("waitingFor")
    return str(found) if found else None


def approve(history: History, ref: str, actor: Actor, wave: str | None = None) -> Approval:
    """Record ``actor``'s approval of ``wave`` (default: the one the job waits for)."""
    job = history.get_job(history.find_job(ref))
    assert job is not None
    if _ended(job):
        raise NotApprovable(f"job {job['id']} is {job['status']}: nothing to approve")
    target = wave or waiting_for(job)
    if target is None:
        raise NotApprovable(
            f"job {job['id']} is {job['status']}, not awaiting approval; name the wave to "
            "approve ahead"
        )
    options = job.get("options") or {}
    known = [w["name"] for w in options.get("waves") or []]
    if known and target not in known:
        raise NotApprovable(f"job {job['id']} has no wave {target!r} (waves: {', '.join(known)})")
    recorded = history.approve(job["id"], target, actor=actor)
    creator = creator_of(recorded.get("options"))
    return Approval(
        job["id"],
        target,
        approvers_of(recorded.get("approvals") or [], target, creator),
        required_approvers(recorded.get("options"), target),
    )


def cancel(history: History, ref: str, actor: Actor) -> dict[str, Any]:
    """Ask a job to stop (in-flight clusters finish, nothing new is written); returns it."""
    job = history.get_job(history.find_job(ref))
    assert job is not None
    if _ended(job):
        raise NotApprovable(f"job {job['id']} is already {job['status']}")
    return history.request_cancel(job["id"], actor=actor)

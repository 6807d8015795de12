"""Routes of remediation jobs: list, follow, start, approve, cancel, resume; their reports and
the audit trail of their ARM writes.

A job started here is the job ``fleet remediate`` would start with the same options: a
``JobRequest`` (live, a saved plan, or a retry of an earlier job) run by the configured engine,
recorded in the same history. Approvals and cancel requests go through ``fleet.jobs.operators``,
as ``fleet jobs approve|cancel`` do, under the caller's identity.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from fleet.apply.lifecycle import ENDED, JobStatus
from fleet.apply.spec import JobRequest, Mode
from fleet.core.errors import JobNotFound
from fleet.jobs import operators
from fleet.jobs.job_report import recorded_report
from fleet.record.events import JOB_CANCEL
from fleet.service.auth import Approver, Operator, State, Viewer
from fleet.service.errors import not_found
from fleet.service.views import job_view

router = APIRouter(prefix="/api/v1", tags=["jobs"])


class JobBody(BaseModel):
    """A remediation job to start; ``{}`` is a live job of the server's policies."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    plan: dict[str, Any] | None = Field(
        default=None, description="Apply exactly this saved plan (POST /api/v1/plans)."
    )
    retry_of: str | None = Field(
        default=None,
        alias="retryOf",
        max_length=128,
        description="Re-apply what this job failed, left for retry or did not reach.",
    )
    policy: str | None = Field(
        default=None, max_length=256, description="Only this policy's resources."
    )
    max_clusters: int | None = Field(default=None, alias="maxClusters", ge=1, le=1_000_000)
    approval_timeout: float = Field(default=3600.0, alias="approvalTimeout", ge=0, le=7 * 86400)
    operation_timeout: float = Field(default=1800.0, alias="operationTimeout", ge=1, le=86400)


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wave: str | None = Field(
        default=None, max_length=128, description="Default: the wave the job waits for."
    )


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    approval_timeout: float = Field(default=3600.0, alias="approvalTimeout", ge=0, le=7 * 86400)


@router.get("/jobs")
def list_jobs(
    state: State,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    status: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """Recorded jobs, newest first (remediations and distributed sweeps)."""
    return {"jobs": state.history.jobs(limit, status=status), "engine": state.engine.name}


@router.get("/jobs/{ref}")
def get_job(ref: str, state: State, caller: Viewer) -> dict[str, Any]:
    """A job: its waves with progress and approvals, its clusters, its report once ended."""
    history = state.history
    try:
        job_id = history.find_job(ref)
    except JobNotFound:
        pending = state.engine.pending(ref)
        if pending is None:
            raise
        return {"job": pending, "waves": [], "clusters": [], "report": None, "can": {}}
    job = history.get_job(job_id)
    assert job is not None
    try:
        ended = JobStatus(job["status"]) in ENDED
    except ValueError:
        ended = False
    report = recorded_report(history, job_id) if ended and job["kind"] == "remediation" else None
    return job_view(job, history.job_clusters(job_id), caller, report)


@router.get("/jobs/{ref}/report")
def job_report(ref: str, state: State, _: Viewer) -> dict[str, Any]:
    """The job report, as ``fleet remediate -o json`` prints it."""
    return recorded_report(state.history, ref)


@router.get("/jobs/{ref}/writes")
def job_writes(
    ref: str, state: State, _: Viewer, limit: Annotated[int, Query(ge=1, le=10000)] = 1000
) -> dict[str, Any]:
    """The audit trail of the job's ARM writes (as ``fleet jobs audit --job``)."""
    history = state.history
    return {"writes": history.writes(history.find_job(ref), limit=limit)}


@router.post("/jobs", status_code=202)
def start_job(state: State, caller: Operator, body: JobBody | None = None) -> dict[str, Any]:
    """Start a remediation job on the configured engine; follow it at ``/api/v1/jobs/{id}``."""
    body = body or JobBody()
    mode = Mode.PLAN if body.plan is not None else Mode.RETRY if body.retry_of else Mode.LIVE
    request = JobRequest(
        mode=mode,
        plan_document=body.plan,
        retry_of=body.retry_of,
        policy=body.policy,
        max_clusters=body.max_clusters,
        approval_timeout=body.approval_timeout,
        operation_timeout=body.operation_timeout,
        policy_paths=tuple(str(p.resolve()) for p in state.engine.policies),
        requested_by=caller.actor,
    )
    return {"id": state.engine.start_job(request), "engine": state.engine.name}


@router.post("/jobs/{ref}/approve")
def approve(
    ref: str, state: State, caller: Approver, body: ApproveBody | None = None
) -> dict[str, Any]:
    """Approve the wave the job waits for (or a named one ahead); 403 for its creator."""
    found = operators.approve(state.history, ref, caller.actor, (body or ApproveBody()).wave)
    return {"approval": found.to_json()}


@router.post("/jobs/{ref}/cancel", status_code=202)
def cancel(ref: str, state: State, caller: Operator) -> dict[str, Any]:
    """Ask the job to stop: in-flight clusters finish, nothing new is written."""
    if state.engine.cancel_pending(ref):  # still planning: nothing recorded yet
        state.history.record_event(JOB_CANCEL, caller.actor, job_id=ref)
        return {"id": ref, "cancelRequested": True}
    job = operators.cancel(state.history, ref, caller.actor)
    return {"id": job["id"], "cancelRequested": True}


@router.post("/jobs/{ref}/resume", status_code=202)
def resume(
    ref: str, state: State, caller: Operator, body: ResumeBody | None = None
) -> dict[str, Any]:
    """Continue a local job whose server stopped (as ``fleet remediate --resume``)."""
    try:
        state.engine.resume(
            ref, caller.actor, approval_timeout=(body or ResumeBody()).approval_timeout
        )
    except JobNotFound:
        raise not_found(f"no job {ref!r}") from None
    return {"id": ref, "resumed": True}

"""Routes of the installation: health, readiness, metrics, the caller, the kill switch, the
audit trail of people's actions.

``/healthz`` is the one route without a token (a liveness probe: the process answers).
``/readyz`` checks the history database and, when configured, Redis. ``/metrics`` is live
Prometheus text read from the history: the latest sweep as ``fleet report --format
prometheus`` renders it, then the jobs by status and the kill switch. The audit trail is read
here and nowhere written: no route changes or deletes an event.
"""

from __future__ import annotations

import contextlib
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from fleet.core.errors import NoSweeps
from fleet.jobs import killswitch
from fleet.jobs.reporting import render_recorded
from fleet.record.jobstate import JobState
from fleet.service.auth import Admin, Anyone, State, Viewer

router = APIRouter(tags=["installation"])


class KillSwitchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engaged: bool
    reason: str | None = Field(default=None, max_length=500)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers (no token needed, nothing else is said)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: State, _: Viewer) -> JSONResponse:
    """Readiness: the history database answers, and Redis when a broker is configured."""
    checks: dict[str, str] = {}
    try:
        state.history.count()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {exc.__class__.__name__}"
    if state.engine.celery:
        try:
            JobState(state.settings.redis_url).ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {exc.__class__.__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, 200 if ready else 503)


def _jobs_metrics(state: State) -> str:
    counts: dict[str, int] = {}
    for job in state.history.jobs(1000, kind="remediation"):
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    lines = [
        "# HELP fleet_remediation_jobs Recorded remediation jobs (the last 1000) by status.",
        "# TYPE fleet_remediation_jobs gauge",
        *(f'fleet_remediation_jobs{{status="{s}"}} {n}' for s, n in sorted(counts.items())),
        "# HELP fleet_kill_switch_engaged 1 while the kill switch is on.",
        "# TYPE fleet_kill_switch_engaged gauge",
        f"fleet_kill_switch_engaged {int(killswitch.state(state.history).engaged)}",
    ]
    return "\n".join(lines) + "\n"


@router.get("/metrics")
def metrics(state: State, _: Viewer) -> Response:
    """Prometheus metrics read from the history now."""
    out = io.StringIO()
    with contextlib.suppress(NoSweeps):  # nothing swept yet: the job metrics alone
        render_recorded(state.history, state.history.resolve("latest"), "prometheus", out)
    return Response(out.getvalue() + _jobs_metrics(state), media_type="text/plain; version=0.0.4")


@router.get("/api/v1/me")
def me(caller: Anyone) -> dict[str, Any]:
    """Who the token says the caller is, its roles, and what it may do."""
    return caller.to_json()


@router.get("/api/v1/kill-switch")
def kill_switch(state: State, _: Viewer) -> dict[str, Any]:
    return killswitch.read(state.history, killswitch.mirror_url(state.settings)).to_json()


@router.put("/api/v1/kill-switch")
def set_kill_switch(state: State, caller: Admin, body: KillSwitchBody) -> dict[str, Any]:
    """Engage the kill switch (every running job stops at its next step, none starts) or
    release it."""
    mirror = killswitch.mirror_url(state.settings)
    if body.engaged:
        killswitch.engage(state.history, mirror, reason=body.reason, actor=caller.actor)
    else:
        killswitch.release(state.history, mirror, actor=caller.actor)
    return killswitch.read(state.history, mirror).to_json()


@router.get("/api/v1/audit")
def audit(
    state: State,
    _: Viewer,
    job: Annotated[str | None, Query(alias="jobId", max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """People's actions, newest first; ``before`` (an event id) pages back."""
    return {"events": state.history.events(job_id=job, action=action, limit=limit, before=before)}

"""Routes of sweeps and reports: list, read, drill into a cluster, compare, trends, render in
every report format, start a sweep, make a plan.

Reports come from the history database exactly as ``fleet report`` renders them
(``fleet.jobs.reporting.render_recorded``); a sweep's diff is ``fleet report diff``'s.
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from fleet.jobs.reporting import CHANGES_KEPT, render_recorded
from fleet.report.changes import diff
from fleet.report.trends import series
from fleet.service.auth import Operator, State, Viewer
from fleet.service.errors import not_found
from fleet.service.views import cluster_row, matches

router = APIRouter(prefix="/api/v1", tags=["sweeps and reports"])

Format = Literal["json", "csv", "md", "html", "policyreport", "junit", "prometheus"]
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "policyreport": "application/yaml",
    "junit": "application/xml",
    "prometheus": "text/plain; version=0.0.4; charset=utf-8",
}


class Empty(BaseModel):
    """``{}``: the server's policies, default options."""

    model_config = ConfigDict(extra="forbid")


@router.get("/sweeps")
def list_sweeps(
    state: State, _: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    """Recorded sweeps, newest first."""
    return {"sweeps": state.history.sweeps(limit)}


@router.get("/sweeps/{ref}")
def get_sweep(ref: str, state: State, _: Viewer) -> JSONResponse:
    """The report JSON of a sweep (``latest``, ``previous``, ``latest~N``, an id or a prefix)."""
    return JSONResponse(state.history.load_report(state.history.resolve(ref)))


@router.get("/sweeps/{ref}/clusters")
def sweep_clusters(
    ref: str,
    state: State,
    _: Viewer,
    cluster_state: Annotated[str | None, Query(alias="state", max_length=32)] = None,
    search: Annotated[str | None, Query(max_length=256)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of a sweep's clusters (filtered by state and a search in name, id and group)."""
    history = state.history
    sweep_id = history.resolve(ref)
    rows, total = [], 0
    for verdict in history.iter_clusters(sweep_id):
        if not matches(verdict, cluster_state, search):
            continue
        if offset <= total < offset + limit:
            rows.append(cluster_row(verdict))
        total += 1
    return {"sweep": sweep_id, "total": total, "offset": offset, "clusters": rows}


@router.get("/sweeps/{ref}/cluster")
def sweep_cluster(
    ref: str,
    state: State,
    _: Viewer,
    cluster_id: Annotated[str, Query(alias="id", max_length=1024)],
) -> dict[str, Any]:
    """One cluster of a sweep: its verdict with every finding's field diff, and its history."""
    history = state.history
    sweep_id = history.resolve(ref)
    wanted = cluster_id.lower()
    for verdict in history.iter_clusters(sweep_id):
        if str(verdict.get("id", "")).lower() == wanted:
            return {
                "sweep": sweep_id,
                "cluster": verdict,
                "history": history.cluster_history(verdict["id"], limit=30),
            }
    raise not_found(f"no cluster {cluster_id!r} in sweep {sweep_id}")


@router.get("/sweeps/{ref}/diff")
def sweep_diff(
    ref: str, state: State, _: Viewer, against: Annotated[str | None, Query(max_length=128)] = None
) -> dict[str, Any]:
    """What changed between ``against`` (default: the sweep before) and this sweep."""
    history = state.history
    after = history.resolve(ref)
    before = history.resolve(against) if against else history.previous(after, complete_only=True)
    if before is None:
        raise not_found(f"sweep {after} has no earlier sweep to compare with")
    return diff(
        history.iter_clusters(before),
        history.iter_clusters(after),
        before_info=history.header(before)["sweep"],
        after_info=history.header(after)["sweep"],
        limit=CHANGES_KEPT,
    )


@router.get("/trends")
def trends(
    state: State, _: Viewer, last: Annotated[int, Query(ge=1, le=1000)] = 30
) -> dict[str, Any]:
    """Compliance over the last sweeps, oldest first, and the same as series per state."""
    found = state.history.trends(last)
    return {"trends": found, "series": series(found)}


@router.get("/reports/{ref}")
def report(ref: str, state: State, _: Viewer, format: Format = "json") -> Response:
    """A sweep rendered in any report format, as ``fleet report REF --format F``."""
    history = state.history
    out = io.StringIO()
    render_recorded(history, history.resolve(ref), format, out)
    return Response(out.getvalue(), media_type=MEDIA_TYPES[format])


@router.post("/sweeps", status_code=202)
def start_sweep(state: State, caller: Operator, body: Empty | None = None) -> dict[str, Any]:
    """Start a sweep of the server's policies on the configured engine."""
    return state.engine.start_sweep(caller.actor)


@router.post("/plans")
def make_plan(state: State, _: Operator, body: Empty | None = None) -> JSONResponse:
    """What a remediation would change now (a recorded sweep; writes nothing), as a saved
    plan that ``POST /api/v1/jobs {"plan": ...}`` applies exactly. Answers when it is made."""
    return JSONResponse(state.engine.plan())

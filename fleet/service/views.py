"""The API's answers about jobs and sweeps, shaped from the history's records (no I/O here).

A job is answered with what the console shows: the recorded job (secrets never reach the
history, so none can reach an answer), its waves with their progress per status and their
approvals (who, when, how many of how many), its clusters without their facts, the report once
it has ended, and what this caller may do now (``can``: the console shows only the buttons the
API would accept; the API checks again on every call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from fleet.core.duties import approver_key, approvers_of
from fleet.jobs.operators import waiting_for
from fleet.record.jobs import TERMINAL_STATUSES, creator_of, required_approvers
from fleet.service.auth import Caller, Role


def waves_of(job: Mapping[str, Any], clusters: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each wave of the job with its clusters' statuses and its approvals."""
    options = job.get("options") or {}
    creator = creator_of(options)
    approvals = job.get("approvals") or []
    per_wave: dict[str, Counter[str]] = {}
    for c in clusters:
        per_wave.setdefault(str(c.get("wave") or ""), Counter())[str(c["status"])] += 1
    out = []
    for w in options.get("waves") or []:
        name = str(w["name"])
        counted = approvers_of(approvals, name, creator)
        out.append(
            {
                "name": name,
                "clusters": int(w.get("clusters") or 0),
                "approval": bool(w.get("approval")),
                "approvers": required_approvers(options, name),
                "implicit": bool(w.get("implicit")),
                "statuses": dict(sorted(per_wave.get(name, Counter()).items())),
                "approvals": [
                    {"name": a.get("by"), "oid": a.get("oid"), "at": a.get("at")}
                    for a in approvals
                    if a.get("wave") == name and approver_key(a) in counted
                ],
                "approved": len(counted) >= required_approvers(options, name),
            }
        )
    return out


def permissions(job: Mapping[str, Any], caller: Caller) -> dict[str, bool]:
    """What ``caller`` may do to the job now."""
    ended = job.get("status") in TERMINAL_STATUSES
    waiting = waiting_for(dict(job))
    creator = creator_of(job.get("options"))
    mine = creator is not None and creator.oid == caller.oid
    already = any(
        a.get("wave") == waiting and a.get("oid") == caller.oid for a in job.get("approvals") or []
    )
    return {
        "approve": caller.has(Role.APPROVER) and waiting is not None and not mine and not already,
        "cancel": caller.has(Role.OPERATOR) and not ended,
    }


def job_view(
    job: Mapping[str, Any],
    clusters: list[dict[str, Any]],
    caller: Caller,
    report: dict[str, Any] | None,
) -> dict[str, Any]:
    for c in clusters:
        c.pop("facts", None)  # the cluster id says which; facts are for retries
    progress = (job.get("summary") or {}).get("progress") or {}
    return {
        "job": dict(job),
        "createdBy": (job.get("options") or {}).get("createdBy"),
        "waitingFor": waiting_for(dict(job)),
        "wave": progress.get("wave"),
        "waves": waves_of(job, clusters),
        "clusters": clusters,
        "report": report,
        "can": permissions(job, caller),
    }


def cluster_row(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """One cluster of a sweep in a list: who it is, its state, how many findings."""
    return {
        "id": verdict.get("id"),
        "name": verdict.get("name"),
        "type": verdict.get("type"),
        "subscriptionId": verdict.get("subscriptionId"),
        "resourceGroup": verdict.get("resourceGroup"),
        "location": verdict.get("location"),
        "state": verdict.get("state"),
        "findings": len(verdict.get("findings") or []),
        "extensionVersion": verdict.get("extensionVersion"),
        "inWindow": verdict.get("extensionVersionInWindow"),
    }


def matches(verdict: Mapping[str, Any], state: str | None, search: str | None) -> bool:
    if state and verdict.get("state") != state:
        return False
    if search:
        needle = search.lower()
        hay = " ".join(str(verdict.get(k) or "") for k in ("name", "id", "resourceGroup"))
        return needle in hay.lower()
    return True

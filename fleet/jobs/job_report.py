"""The report of a recorded remediation job, read back from the history database.

Both engines end a job by recording it the same way (``fleet.apply.lifecycle.JobResult`` as the
job's summary, one ``job_clusters`` row per cluster, one ``arm_writes`` row per write), and both
``fleet remediate`` paths print this report of it, so a job's report cannot depend on the engine
that ran it. Its shape is ``JobResult.report()``'s: ``job``, ``summary``, ``waves``, then every
cluster with its status, category, reason and writes, and the retry list.
"""

from __future__ import annotations

from typing import Any

from fleet.apply.outcomes import RETRY_STATUSES, ClusterStatus
from fleet.core.ids import key
from fleet.record.history import History

_RETRY = {s.value for s in RETRY_STATUSES} | {ClusterStatus.PENDING.value}


def recorded_report(history: History, job_id: str) -> dict[str, Any]:
    """The job report of ``job_id`` as recorded (``JobNotFound`` when there is none)."""
    job = history.get_job(history.find_job(job_id))
    assert job is not None
    summary = dict(job.get("summary") or {})
    report: dict[str, Any] = {
        "job": summary.get("job") or {"id": job["id"], "status": job["status"]},
        "summary": summary.get("summary") or dict(job.get("counters") or {}),
        "waves": summary.get("waves") or [],
    }
    writes: dict[str, list[dict[str, Any]]] = {}
    for w in history.writes(job["id"]):
        writes.setdefault(key(w["clusterId"]), []).append(
            {
                "action": w["action"],
                "resource": w["resourceId"],
                "outcome": w["outcome"],
                "errorCode": w["errorCode"],
                "errorMessage": w["errorMessage"],
                "correlationId": w["correlationId"],
            }
        )
    clusters = [
        {
            "id": row["clusterId"],
            "name": row["name"],
            "wave": row.get("wave"),
            "status": row["status"],
            "category": (row.get("outcome") or {}).get("category"),
            "reason": row.get("reason"),
            "nextWindow": (row.get("outcome") or {}).get("nextWindow"),
            "writes": writes.get(key(row["clusterId"]), []),
        }
        for row in history.job_clusters(job["id"])
    ]
    report["clusters"] = sorted(clusters, key=lambda c: str(c["id"]).lower())
    report["retry"] = sorted((c["id"] for c in clusters if c["status"] in _RETRY), key=str.lower)
    if summary.get("reads"):
        # ARM reads by phase, as the local engine counted them (fleet.apply.readcount).
        report["reads"] = summary["reads"]
    return report

"""What two runs of the same remediation job must have in common, whatever ran them (the local
engine or Celery, the command line or the API): the job report, the history's job row and
``job_clusters`` rows, and the audit trail of ARM writes, with only what must differ left out
(ids, timestamps, the engine's name, ARM's correlation ids)."""

from __future__ import annotations

import re
from typing import Any

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")


def _text(value: Any) -> Any:
    return _TIME.sub("<time>", value) if isinstance(value, str) else value


def comparable(run: dict[str, Any]) -> dict[str, Any]:
    """What must be equal on both engines (ids, times, engine name, correlation ids out)."""
    report = run["report"]
    job = {
        k: _text(v)
        for k, v in report["job"].items()
        if k not in ("id", "startedAt", "finishedAt", "engine", "sweepId")
    }
    clusters = [
        {
            **{k: _text(v) for k, v in c.items() if k != "writes"},
            "writes": [{k: v for k, v in w.items() if k != "correlationId"} for w in c["writes"]],
        }
        for c in report["clusters"]
    ]
    rows = sorted(
        (
            r["clusterId"].lower(),
            r["status"],
            _text(r["reason"]),
            (r["outcome"] or {}).get("category"),
            tuple((r["outcome"] or {}).get("errors") or ()),
            len((r["outcome"] or {}).get("writes") or ()),
        )
        for r in run["rows"]
    )
    writes = sorted(
        (
            w["clusterId"].lower(),
            w["resourceId"].lower(),
            w["action"],
            w["outcome"],
            w["errorCode"],
            w["bodyDigest"],
            w["wave"],
        )
        for w in run["writes"]
    )
    recorded = run["job"]
    return {
        "exit": run["exit"],
        "job": job,
        "summary": report["summary"],
        "waves": report["waves"],
        "clusters": clusters,
        "retry": report["retry"],
        "history": {
            "status": recorded["status"],
            "counters": recorded["counters"],
            "summaryJob": {
                k: _text(v)
                for k, v in recorded["summary"]["job"].items()
                if k not in ("id", "startedAt", "finishedAt", "engine", "sweepId")
            },
            "summaryCounts": recorded["summary"]["summary"],
            "rows": rows,
            "writes": writes,
        },
    }


def difference(local: Any, celery: Any) -> Any:
    """The first items that differ, for a failure message a person can read."""
    if isinstance(local, list) and isinstance(celery, list) and len(local) == len(celery):
        return next(
            ({"local": a, "celery": b} for a, b in zip(local, celery, strict=True) if a != b), None
        )
    if isinstance(local, dict) and isinstance(celery, dict):
        return {
            k: (local.get(k), celery.get(k))
            for k in local.keys() | celery.keys()
            if local.get(k) != celery.get(k)
        }
    return {"local": local, "celery": celery}

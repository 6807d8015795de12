"""The events of fleet's notifications, as pure functions over what a sweep or a job produced.

Each occurrence is one ``Event``: its CloudEvents ``type``, a deterministic ``id`` (the same
occurrence always gets the same id, so a finaliser that runs twice queues it once and a
receiver can drop duplicates), the ``subject`` (a sweep or job id), ``time`` and ``data``. The
data carries no timestamps and no engine name, so the same sweep or job gives the same data on
the local engine and on Celery (docs/contracts.md, Notifications).

Sweeps: what changed since the previous complete sweep (``fleet.report.changes.diff``), minus
what was announced already (``announced``: the last announced state per finding key), so an
unchanged finding is never sent again; above ``Thresholds.digest`` findings one digest event
gives the counts and the first clusters instead of every finding.

Scheduled sweeps: a schedule's latest due time at least ``grace`` seconds ago must be followed by
a sweep that judged the policy (a scheduled sweep of it, or any sweep of a set that includes
it). A policy that was never swept is left alone: its schedule has never been seen working, and
a fresh installation would otherwise announce every schedule as missed. The event's id is made
of the policy and the due time, so each missed run is announced once however often the beat
looks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fleet.core.finding_keys import finding_key, key_hash

SWEEP_DRIFT = "fleet.sweep.drift"
SWEEP_FIXED = "fleet.sweep.fixed"
SWEEP_COMPLIANCE_DROPPED = "fleet.sweep.compliance_dropped"
SWEEP_MISSED = "fleet.sweep.missed"
JOB_AWAITING_APPROVAL = "fleet.job.awaiting_approval"
JOB_BUDGET_EXCEEDED = "fleet.job.budget_exceeded"
JOB_FINISHED = "fleet.job.finished"

#: Every event type, in the order docs/notifications.md lists them.
TYPES = (
    SWEEP_DRIFT,
    SWEEP_FIXED,
    SWEEP_COMPLIANCE_DROPPED,
    SWEEP_MISSED,
    JOB_AWAITING_APPROVAL,
    JOB_BUDGET_EXCEEDED,
    JOB_FINISHED,
)

DRIFT = "drift"
FIXED = "fixed"
#: Clusters a digest names (the rest are counted, and the digest says how to list them).
DIGEST_CLUSTERS = 20


@dataclass(frozen=True)
class Event:
    """One occurrence to announce (the CloudEvent's attributes and data)."""

    type: str
    subject: str
    time: str
    data: dict[str, Any]
    #: What makes this occurrence unique beside its type and subject (a wave name, a time).
    discriminator: str = ""
    id: str = field(init=False)

    def __post_init__(self) -> None:
        text = f"{self.type}|{self.subject}|{self.discriminator}"
        object.__setattr__(self, "id", hashlib.sha256(text.encode()).hexdigest()[:32])

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "subject": self.subject,
            "time": self.time,
            "data": self.data,
            "discriminator": self.discriminator,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            type=str(data["type"]),
            subject=str(data["subject"]),
            time=str(data["time"]),
            data=dict(data["data"]),
            discriminator=str(data.get("discriminator") or ""),
        )


@dataclass(frozen=True)
class Thresholds:
    """When a sweep's events change shape (``FLEET_NOTIFY_*`` settings)."""

    digest: int = 50
    compliance_drop: float = 5.0


def finding_hash(entry: Mapping[str, Any]) -> str:
    """The ledger key of a ``diff`` entry (which has the finding's code, policy, resource,
    path)."""
    return key_hash(finding_key(entry))


@dataclass(frozen=True)
class SweepNotice:
    """A sweep's events, and the announced state of each finding they announce."""

    events: list[Event]
    announced: dict[str, str]


def _finding(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "clusterId": entry.get("cluster"),
        "name": entry.get("name"),
        "code": entry.get("code"),
        "path": entry.get("path"),
        "policy": entry.get("policy"),
        "resource": entry.get("resource"),
    }


def _by_cluster(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per cluster (in the diff's order): its id, name, how many findings and which codes."""
    clusters: dict[str, dict[str, Any]] = {}
    for e in entries:
        c = clusters.setdefault(
            str(e.get("cluster")),
            {"clusterId": e.get("cluster"), "name": e.get("name"), "findings": 0, "codes": []},
        )
        c["findings"] += 1
        if e.get("code") not in c["codes"]:
            c["codes"].append(e.get("code"))
    return list(clusters.values())


def _findings_data(
    entries: Sequence[Mapping[str, Any]], sweep: str, previous: str, digest_above: int
) -> dict[str, Any]:
    clusters = _by_cluster(entries)
    data: dict[str, Any] = {
        "sweepId": sweep,
        "previousSweepId": previous,
        "counts": {"findings": len(entries), "clusters": len(clusters)},
        "digest": len(entries) > digest_above,
    }
    if data["digest"]:
        data["clusters"] = clusters[:DIGEST_CLUSTERS]
        data["more"] = f"fleet report diff {previous} {sweep} --format json"
    else:
        data["findings"] = [_finding(e) for e in entries]
    return data


def sweep_events(
    changes: Mapping[str, Any],
    *,
    sweep: Mapping[str, Any],
    summary: Mapping[str, Any] | None,
    previous: Mapping[str, Any],
    previous_summary: Mapping[str, Any] | None,
    announced: Mapping[str, str],
    thresholds: Thresholds,
) -> SweepNotice:
    """The events of a complete sweep compared with the previous complete sweep of the same
    policies: ``changes`` is ``fleet.report.changes.diff`` between the two (unlimited);
    ``announced`` the ledger's state of the findings it names."""
    sweep_id, previous_id = str(sweep["id"]), str(previous["id"])
    when = str(sweep.get("finishedAt") or sweep.get("startedAt"))
    new = [e for e in changes["newDrift"] if announced.get(finding_hash(e)) != DRIFT]
    fixed = [e for e in changes["fixed"] if announced.get(finding_hash(e)) != FIXED]
    events: list[Event] = []
    if new:
        data = _findings_data(new, sweep_id, previous_id, thresholds.digest)
        events.append(Event(SWEEP_DRIFT, sweep_id, when, data))
    if fixed:
        data = _findings_data(fixed, sweep_id, previous_id, thresholds.digest)
        events.append(Event(SWEEP_FIXED, sweep_id, when, data))
    before = (previous_summary or {}).get("compliancePercent")
    after = (summary or {}).get("compliancePercent")
    if before is not None and after is not None and before - after > thresholds.compliance_drop:
        data = {
            "sweepId": sweep_id,
            "previousSweepId": previous_id,
            "compliancePercent": {"from": before, "to": after},
            "drop": round(before - after, 2),
            "threshold": thresholds.compliance_drop,
            "byState": dict((summary or {}).get("byState") or {}),
        }
        events.append(Event(SWEEP_COMPLIANCE_DROPPED, sweep_id, when, data))
    states = {finding_hash(e): DRIFT for e in new}
    states.update({finding_hash(e): FIXED for e in fixed})
    return SweepNotice(events, states)


# --- jobs -------------------------------------------------------------------------------------


def awaiting_approval(job_id: str, wave: str, policy: str | None, at: str) -> Event:
    """A remediation job waits at the approval gate of ``wave``."""
    data = {
        "jobId": job_id,
        "wave": wave,
        "policy": policy,
        "approve": f"fleet jobs approve {job_id}",
    }
    return Event(JOB_AWAITING_APPROVAL, job_id, at, data, discriminator=wave)


def job_events(report: Mapping[str, Any]) -> list[Event]:
    """The events of an ended job, from its report (``JobResult.report(clusters=False)``): the
    failure-budget stop when that is why it stopped, then ``fleet.job.finished``."""
    job = report["job"]
    job_id = str(job["id"])
    when = str(job.get("finishedAt") or job.get("startedAt"))
    data: dict[str, Any] = {
        "jobId": job_id,
        "status": job["status"],
        "mode": job.get("mode"),
        "policy": job.get("policy"),
        "stopKind": job.get("stopKind"),
        "stopReason": job.get("stopReason"),
        "counts": dict(report.get("summary") or {}),
        "waves": [
            {k: v for k, v in w.items() if k not in ("implicit",)}
            for w in report.get("waves") or ()
        ],
    }
    events = []
    if job.get("stopKind") == "failure-budget":
        budget = {
            "jobId": job_id,
            "stopReason": job.get("stopReason"),
            "failureBudget": (job.get("rollout") or {}).get("failureBudget"),
            "counts": data["counts"],
        }
        events.append(Event(JOB_BUDGET_EXCEEDED, job_id, when, budget))
    events.append(Event(JOB_FINISHED, job_id, when, data))
    return events


# --- scheduled sweeps ---------------------------------------------------------------------------

#: A sweep that started this long before the due time still counts (clocks of the beat and of
#: the worker that records the sweep differ a little).
SLACK = timedelta(seconds=60)


def missed_sweeps(
    schedules: Mapping[str, str],
    started: Mapping[str, Sequence[datetime]],
    *,
    now: datetime,
    grace: float,
) -> list[Event]:
    """One ``fleet.sweep.missed`` per scheduled policy whose last due sweep did not start.

    ``schedules``: policy name -> cron (UTC); ``started``: policy name -> when the sweeps that
    judged it started (aware UTC datetimes)."""
    from croniter import croniter  # local: only the beat needs it, every CLI start would pay

    events = []
    for policy, expr in sorted(schedules.items()):
        runs = started.get(policy) or ()
        if not runs:
            continue
        due: datetime = croniter(expr, now - timedelta(seconds=grace)).get_prev(datetime)
        if any(t >= due - SLACK for t in runs):
            continue
        data = {
            "policy": policy,
            "schedule": expr,
            "dueAt": due.isoformat(),
            "lastSweepAt": max(runs).isoformat(),
            "graceSeconds": grace,
        }
        events.append(Event(SWEEP_MISSED, policy, now.isoformat(), data, due.isoformat()))
    return events

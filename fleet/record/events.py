"""The audit trail of people's actions: who started, approved or cancelled a job, who engaged
or released the kill switch, who started a sweep; when, and through what (API or command line).

Append-only: this part of ``History`` inserts events and reads them back, and has no way to
change or delete one (the API in front of it has no route that could either). The ARM writes
a job makes are the other half of the audit trail (``fleet.record.audit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Row

from fleet.core import redact
from fleet.core.duties import Actor
from fleet.record.db import Store, clip, iso, now_utc
from fleet.record.schema import audit_events

#: The actions recorded (``action`` column).
JOB_START = "job.start"
JOB_APPROVE = "job.approve"
JOB_CANCEL = "job.cancel"
JOB_RESUME = "job.resume"
KILL_SWITCH_ENGAGE = "kill-switch.engage"
KILL_SWITCH_RELEASE = "kill-switch.release"
SWEEP_START = "sweep.start"


def insert_event(
    conn: Connection,
    action: str,
    actor: Actor,
    *,
    job_id: str | None = None,
    wave: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Insert one event on ``conn`` (inside the caller's transaction); returns its id."""
    values = {
        "at": now_utc(),
        "action": action,
        "actor_oid": clip(actor.oid, 128),
        "actor_name": clip(actor.name, 256) or "",
        "via": actor.via,
        "job_id": job_id,
        "wave": wave,
        "detail": {
            k: redact.text(v) if isinstance(v, str) else v for k, v in (detail or {}).items()
        }
        or None,
    }
    return int(conn.execute(insert(audit_events).returning(audit_events.c.id), values).scalar_one())


class AuditEvents(Store):
    """Records people's actions and reads them back, newest first (a part of ``History``)."""

    def record_event(
        self,
        action: str,
        actor: Actor,
        *,
        job_id: str | None = None,
        wave: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        with self._engine.begin() as conn:
            return insert_event(conn, action, actor, job_id=job_id, wave=wave, detail=detail)

    def events(
        self,
        *,
        job_id: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[dict[str, Any]]:
        """Events newest first; ``before`` (an event id) pages back through older ones."""
        query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        if job_id is not None:
            query = query.where(audit_events.c.job_id == job_id)
        if action is not None:
            query = query.where(audit_events.c.action == action)
        if before is not None:
            query = query.where(audit_events.c.id < before)
        with self._engine.connect() as conn:
            return [_event(row) for row in conn.execute(query)]


def _event(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": iso(row.at),
        "action": row.action,
        "actor": {"oid": row.actor_oid, "name": row.actor_name, "via": row.via},
        "jobId": row.job_id,
        "wave": row.wave,
        "detail": row.detail or {},
    }

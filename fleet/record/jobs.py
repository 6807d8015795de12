"""Jobs in the history database: remediation and distributed jobs, their clusters, cancel
requests and wave approvals.

A job row holds what the job is (kind, plan digest, options), where it is (status, counters,
summary) and what operators asked of it (cancel, approvals); ``job_clusters`` holds each
cluster's status, reason, actions and outcome. Reasons pass through ``fleet.core.redact``.
Approvals follow the rules of ``fleet.core.duties`` (the creator never approves; a wave may
need several distinct approvers); each approval and cancel request is also an audit event
(``fleet.record.events``), in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row

from fleet.core.duties import Actor, approver_key, check_approver, wave_approved
from fleet.core.errors import JobNotFound
from fleet.core.ids import key as id_key
from fleet.record.db import BATCH, Store, chunks, clean_message, iso, now_utc, redacted, utc
from fleet.record.events import JOB_APPROVE, JOB_CANCEL, insert_event
from fleet.record.schema import job_clusters
from fleet.record.schema import jobs as jobs_table

#: Job statuses after which a job is over (``finished_at`` is set automatically).
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "stopped", "completed"})


class JobRecords(Store):
    """Creates, updates and finds jobs; their clusters, cancel flag, approvals (a part of
    ``History``)."""

    def create_job(
        self,
        *,
        kind: str,
        job_id: str | None = None,
        status: str = "pending",
        principal: str | None = None,
        plan_digest: str | None = None,
        options: Mapping[str, Any] | None = None,
        sweep_id: str | None = None,
        policy_revision: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """Record a new job; returns its id (a new one unless ``job_id`` is given).

        Idempotent for retries: creating a job whose id exists with the same kind and plan
        digest returns that id; a different job under the same id is refused.
        """
        job_id = job_id or uuid.uuid4().hex
        at = utc(now) or now_utc()
        values = {
            "id": job_id,
            "kind": kind,
            "status": status,
            "created_at": at,
            "updated_at": at,
            "finished_at": at if status in TERMINAL_STATUSES else None,
            "principal": principal,
            "plan_digest": plan_digest,
            "sweep_id": sweep_id,
            "policy_revision": policy_revision,
            "options": dict(options or {}),
            "counters": {},
            "summary": None,
        }
        with self._engine.begin() as conn:
            existing = conn.execute(
                select(jobs_table.c.kind, jobs_table.c.plan_digest).where(jobs_table.c.id == job_id)
            ).first()
            if existing is not None:
                if (existing.kind, existing.plan_digest) == (kind, plan_digest):
                    return job_id
                raise ValueError(
                    f"job {job_id!r} already exists for a different {existing.kind} plan"
                )
            conn.execute(insert(jobs_table), values)
        return job_id

    def update_job(
        self,
        job_id: str,
        *,
        status: str | None = None,
        counters: Mapping[str, int] | None = None,
        summary: Mapping[str, Any] | None = None,
        finished_at: datetime | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Change a job's status, merge ``counters`` into its counters, replace its summary.
        Returns the job as ``get_job`` would."""
        at = utc(now) or now_utc()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(jobs_table.c.counters, jobs_table.c.finished_at).where(
                    jobs_table.c.id == job_id
                )
            ).first()
            if row is None:
                raise KeyError(f"no job {job_id!r}")
            values: dict[str, Any] = {"updated_at": at}
            if status is not None:
                values["status"] = status
                if status in TERMINAL_STATUSES and row.finished_at is None:
                    values["finished_at"] = at
            if finished_at is not None:
                values["finished_at"] = utc(finished_at)
            if counters is not None:
                values["counters"] = {**(row.counters or {}), **dict(counters)}
            if summary is not None:
                values["summary"] = dict(summary)
            conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))
        job = self.get_job(job_id)
        assert job is not None
        return job

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return None if row is None else _job(row)

    def jobs(
        self, limit: int = 50, *, kind: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Jobs, newest first."""
        query = (
            select(jobs_table)
            .order_by(jobs_table.c.created_at.desc(), jobs_table.c.id.desc())
            .limit(limit)
        )
        if kind is not None:
            query = query.where(jobs_table.c.kind == kind)
        if status is not None:
            query = query.where(jobs_table.c.status == status)
        with self._engine.connect() as conn:
            return [_job(row) for row in conn.execute(query)]

    def find_job(self, ref: str) -> str:
        """A job id from ``latest``, a full id or a unique prefix; raises ``JobNotFound``."""
        ref = (ref or "latest").strip()
        with self._engine.connect() as conn:
            if ref == "latest":
                found = conn.execute(
                    select(jobs_table.c.id)
                    .order_by(jobs_table.c.created_at.desc(), jobs_table.c.id.desc())
                    .limit(1)
                ).scalar()
                if found is None:
                    raise JobNotFound(f"no jobs in {redacted(self.url)}")
                return str(found)
            exact = conn.execute(select(jobs_table.c.id).where(jobs_table.c.id == ref)).scalar()
            if exact is not None:
                return str(exact)
            like = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            matches = list(
                conn.execute(
                    select(jobs_table.c.id).where(jobs_table.c.id.like(like, escape="\\")).limit(2)
                ).scalars()
            )
        if not matches:
            raise JobNotFound(f"no job {ref!r}")
        if len(matches) > 1:
            raise JobNotFound(f"{ref!r} matches more than one job; give more of the id")
        return str(matches[0])

    def add_job_clusters(self, job_id: str, clusters: Sequence[Mapping[str, Any]]) -> int:
        """Record clusters of a job: ``{clusterId, name, wave, status, reason, facts, actions,
        outcome}``. ``actions`` are ``Action`` dumps (protected settings are references)."""
        if not clusters:
            return 0
        at = now_utc()
        rows = [
            {
                "job_id": job_id,
                "cluster_id": str(c["clusterId"]),
                "cluster_key": id_key(str(c["clusterId"])),
                "name": str(c.get("name") or ""),
                "wave": c.get("wave"),
                "status": str(c["status"]),
                "reason": clean_message(c.get("reason")),
                "facts": c.get("facts"),
                "actions": c.get("actions"),
                "outcome": c.get("outcome"),
                "updated_at": at,
            }
            for c in clusters
        ]
        with self._engine.begin() as conn:
            for chunk in chunks(rows, BATCH):
                conn.execute(insert(job_clusters), list(chunk))
        return len(rows)

    def update_job_cluster(
        self,
        job_id: str,
        cluster_id: str,
        *,
        status: str,
        reason: str | None = None,
        wave: str | None = None,
        outcome: Mapping[str, Any] | None = None,
        actions: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Change one cluster's status in a job (and its reason, wave, outcome, actions)."""
        values: dict[str, Any] = {
            "status": status,
            "reason": clean_message(reason),
            "updated_at": now_utc(),
        }
        if wave is not None:
            values["wave"] = wave
        if outcome is not None:
            values["outcome"] = dict(outcome)
        if actions is not None:
            values["actions"] = [dict(a) for a in actions]
        with self._engine.begin() as conn:
            done = conn.execute(
                update(job_clusters)
                .where(
                    job_clusters.c.job_id == job_id,
                    job_clusters.c.cluster_key == id_key(cluster_id),
                )
                .values(**values)
            )
            if done.rowcount == 0:
                raise KeyError(f"no cluster {cluster_id!r} in job {job_id!r}")

    def job_clusters(
        self, job_id: str, *, statuses: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """The clusters of a job in id order, optionally only those in ``statuses``."""
        query = (
            select(job_clusters)
            .where(job_clusters.c.job_id == job_id)
            .order_by(job_clusters.c.cluster_key)
        )
        if statuses is not None:
            query = query.where(job_clusters.c.status.in_(list(statuses)))
        with self._engine.connect() as conn:
            return [_job_cluster(row) for row in conn.execute(query)]

    def request_cancel(self, job_id: str, *, actor: Actor | None = None) -> dict[str, Any]:
        """Ask a running job to stop (it checks between clusters and waves); the request is in
        the audit trail under ``actor`` (the local user when not given)."""
        actor = actor or Actor.local()
        with self._engine.begin() as conn:
            done = conn.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id)
                .values(cancel_requested=True, updated_at=now_utc())
            )
            if done.rowcount == 0:
                raise JobNotFound(f"no job {job_id!r}")
            insert_event(conn, JOB_CANCEL, actor, job_id=job_id)
        job = self.get_job(job_id)
        assert job is not None
        return job

    def cancel_requested(self, job_id: str) -> bool:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(jobs_table.c.cancel_requested).where(jobs_table.c.id == job_id)
            ).scalar()
        return bool(value)

    def approve(
        self, job_id: str, wave: str, *, by: str | None = None, actor: Actor | None = None
    ) -> dict[str, Any]:
        """Record ``actor``'s approval of ``wave`` (idempotent per approver) and its audit
        event; returns the job. ``ApprovalRefused`` when the actor created the job
        (``fleet.core.duties``). ``by`` alone names a local user (the command line)."""
        actor = actor or (Actor(by, None, "cli") if by else Actor.local())
        with self._engine.begin() as conn:
            row = conn.execute(
                select(jobs_table.c.approvals, jobs_table.c.options).where(
                    jobs_table.c.id == job_id
                )
            ).first()
            if row is None:
                raise JobNotFound(f"no job {job_id!r}")
            check_approver(creator_of(row.options), actor)
            approvals = list(row.approvals or [])
            if not any(a.get("wave") == wave and approver_key(a) == actor.key for a in approvals):
                approvals.append(
                    {
                        "wave": wave,
                        "by": actor.name,
                        "oid": actor.oid,
                        "via": actor.via,
                        "at": iso(now_utc()),
                    }
                )
                conn.execute(
                    update(jobs_table)
                    .where(jobs_table.c.id == job_id)
                    .values(approvals=approvals, updated_at=now_utc())
                )
                insert_event(conn, JOB_APPROVE, actor, job_id=job_id, wave=wave)
        job = self.get_job(job_id)
        assert job is not None
        return job

    def approved(self, job_id: str, wave: str) -> bool:
        """True once the wave has as many distinct approvers as it needs (its ``approvers``,
        recorded with the job's waves), the job's creator never among them."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(jobs_table.c.approvals, jobs_table.c.options).where(
                    jobs_table.c.id == job_id
                )
            ).first()
        if row is None:
            return False
        return wave_approved(
            row.approvals or [],
            wave,
            creator_of(row.options),
            required_approvers(row.options, wave),
        )


def creator_of(options: Mapping[str, Any] | None) -> Actor | None:
    """Who started the job, as its options recorded it."""
    return Actor.from_json((options or {}).get("createdBy"))


def required_approvers(options: Mapping[str, Any] | None, wave: str) -> int:
    """How many distinct approvers the job's ``wave`` needs (1 unless its policy said more)."""
    for w in (options or {}).get("waves") or []:
        if w.get("name") == wave:
            return int(w.get("approvers") or 1)
    return 1


def _job(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
        "finishedAt": iso(row.finished_at),
        "principal": row.principal,
        "planDigest": row.plan_digest,
        "sweepId": row.sweep_id,
        "policyRevision": row.policy_revision,
        "options": row.options or {},
        "counters": row.counters or {},
        "summary": row.summary,
        "cancelRequested": bool(row.cancel_requested),
        "approvals": row.approvals or [],
    }


def _job_cluster(row: Row[Any]) -> dict[str, Any]:
    return {
        "clusterId": row.cluster_id,
        "name": row.name,
        "wave": row.wave,
        "status": row.status,
        "reason": row.reason,
        "facts": row.facts,
        "actions": row.actions or [],
        "outcome": row.outcome,
        "updatedAt": iso(row.updated_at),
    }

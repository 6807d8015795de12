"""Reading sweeps back, and retention.

References (``latest``, ``previous``, ``latest~N``, an id or a unique prefix) resolve to a sweep
id; a report reads back exactly as recorded (``load_report``), or one verdict at a time when the
fleet is large (``iter_clusters``); ``trends`` and ``cluster_history`` feed charts and "when did
this drift start?". ``prune`` deletes what is older than the retention period. The store knows
nothing about rendering (``fleet.report``): the CLI composes the two.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select

from fleet.core.errors import AmbiguousSweep, NoSweeps, SweepNotFound
from fleet.core.ids import key as id_key
from fleet.record.db import Store, chunks, iso, now_utc, redacted, utc
from fleet.record.schema import applied_fingerprints as fp_table
from fleet.record.schema import (
    arm_writes,
    cluster_verdicts,
    findings,
    job_clusters,
    policy_states,
    sweeps,
)
from fleet.record.schema import jobs as jobs_table


class SweepReading(Store):
    """Looks sweeps up, reads them back, prunes old ones (a part of ``History``)."""

    def _finished(self, *, complete_only: bool = False) -> Select[Any]:
        query = select(sweeps.c.id).where(sweeps.c.finished_at.is_not(None))
        if complete_only:
            query = query.where(sweeps.c.complete.is_(True))
        return query

    def sweeps(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recorded sweeps, newest first: ``{"sweep": {...}, "summary": {...} | None}``.

        Unfinished sweeps (running, or a process that died) are listed too, with
        ``summary: None``.
        """
        query = (
            select(sweeps.c.info, sweeps.c.summary)
            .order_by(sweeps.c.started_at.desc(), sweeps.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [{"sweep": row.info, "summary": row.summary} for row in conn.execute(query)]

    def count(self) -> int:
        """How many sweeps are recorded (finished or not)."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(sweeps)).scalar_one())

    def resolve(self, ref: str) -> str:
        """A sweep id from ``latest``, ``previous``, ``latest~N``, a full id or a unique prefix.

        ``latest`` is the newest *finished* sweep (a running one has no summary yet).
        Raises ``NoSweeps`` on an empty database, ``AmbiguousSweep`` or ``SweepNotFound``.
        """
        ref = (ref or "latest").strip()
        back = _relative(ref)
        with self._engine.connect() as conn:
            if back is not None:
                found = conn.execute(
                    self._finished()
                    .order_by(sweeps.c.started_at.desc(), sweeps.c.id.desc())
                    .offset(back)
                    .limit(1)
                ).scalar()
                if found is not None:
                    return str(found)
                total = conn.execute(
                    select(func.count()).select_from(self._finished().subquery())
                ).scalar_one()
                if total == 0:
                    raise NoSweeps(
                        f"no finished sweep in {redacted(self.url)}: run `fleet sweep` first "
                        "(or point FLEET_DATABASE_URL at the right database)"
                    )
                raise SweepNotFound(f"no sweep {ref!r}: only {total} finished sweep(s) recorded")
            exact = conn.execute(select(sweeps.c.id).where(sweeps.c.id == ref)).scalar()
            if exact is not None:
                return str(exact)
            candidates = (
                conn.execute(
                    select(sweeps.c.id)
                    .where(sweeps.c.id.startswith(ref, autoescape=True))
                    .order_by(sweeps.c.started_at.desc())
                    .limit(6)
                )
                .scalars()
                .all()
            )
            if not ref or not candidates:
                if conn.execute(select(func.count()).select_from(sweeps)).scalar_one() == 0:
                    raise NoSweeps(
                        f"no sweeps recorded in {redacted(self.url)}: run `fleet sweep` first"
                    )
                raise SweepNotFound(f"no sweep matches {ref!r} (try `fleet report list`)")
            if len(candidates) > 1:
                shown = ", ".join(candidates[:5]) + (", ..." if len(candidates) > 5 else "")
                raise AmbiguousSweep(
                    f"{ref!r} matches several sweeps ({shown}); give more characters"
                )
            return str(candidates[0])

    def header(self, sweep_id: str) -> dict[str, Any]:
        """``{"sweep": ..., "summary": ...}`` of one sweep (the report without clusters)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(sweeps.c.info, sweeps.c.summary, sweeps.c.extra).where(
                    sweeps.c.id == sweep_id
                )
            ).first()
        if row is None:
            raise SweepNotFound(f"no sweep {sweep_id!r} in {redacted(self.url)}")
        out: dict[str, Any] = {"sweep": row.info, "summary": row.summary}
        out.update(row.extra or {})
        return out

    def load_report(self, sweep_id: str) -> dict[str, Any]:
        """The report exactly as recorded: ``load_report(record_sweep(r)) == r``."""
        head = self.header(sweep_id)
        report = {
            "sweep": head.pop("sweep"),
            "summary": head.pop("summary"),
            "clusters": list(self.iter_clusters(sweep_id)),
        }
        report.update(head)
        return report

    def iter_clusters(self, sweep_id: str, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """The sweep's verdicts one at a time (a server-side cursor on PostgreSQL), sorted by
        case-insensitive cluster id as ``build_report`` sorts them."""
        query = (
            select(cluster_verdicts.c.verdict)
            .where(cluster_verdicts.c.sweep_id == sweep_id)
            .order_by(cluster_verdicts.c.cluster_key, cluster_verdicts.c.id)
        )
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
            for row in result:
                yield row.verdict

    def previous(self, sweep_id: str, *, complete_only: bool = False) -> str | None:
        """The finished sweep that started before ``sweep_id`` (None when it is the first)."""
        with self._engine.connect() as conn:
            started = conn.execute(
                select(sweeps.c.started_at).where(sweeps.c.id == sweep_id)
            ).scalar()
            if started is None:
                raise SweepNotFound(f"no sweep {sweep_id!r} in {redacted(self.url)}")
            found = conn.execute(
                self._finished(complete_only=complete_only)
                .where(
                    or_(
                        sweeps.c.started_at < started,
                        and_(sweeps.c.started_at == started, sweeps.c.id < sweep_id),
                    )
                )
                .order_by(sweeps.c.started_at.desc(), sweeps.c.id.desc())
                .limit(1)
            ).scalar()
        return None if found is None else str(found)

    def trends(
        self, limit: int = 30, *, complete_only: bool = True, until: str | None = None
    ) -> list[dict[str, Any]]:
        """The last ``limit`` finished sweeps, oldest first, for charts: id, startedAt,
        finishedAt, policyRevision, complete, clusters, compliancePercent, byState, byPolicy,
        bySubscription. Incomplete sweeps are left out by default: a sweep that judged a third
        of the fleet would draw a fake dip. ``until``: only sweeps up to this one (the trend
        as it looked when that sweep was reported)."""
        query = (
            select(sweeps.c.id, sweeps.c.info, sweeps.c.summary, sweeps.c.complete)
            .where(sweeps.c.finished_at.is_not(None), sweeps.c.summary.is_not(None))
            .order_by(sweeps.c.started_at.desc(), sweeps.c.id.desc())
            .limit(limit)
        )
        if complete_only:
            query = query.where(sweeps.c.complete.is_(True))
        with self._engine.connect() as conn:
            if until is not None:
                started = conn.execute(
                    select(sweeps.c.started_at).where(sweeps.c.id == until)
                ).scalar()
                if started is None:
                    raise SweepNotFound(f"no sweep {until!r} in {redacted(self.url)}")
                query = query.where(
                    or_(
                        sweeps.c.started_at < started,
                        and_(sweeps.c.started_at == started, sweeps.c.id <= until),
                    )
                )
            rows = conn.execute(query).all()
        out = []
        for row in reversed(rows):
            summary = row.summary or {}
            info = row.info or {}
            out.append(
                {
                    "id": row.id,
                    "startedAt": info.get("startedAt"),
                    "finishedAt": info.get("finishedAt"),
                    "policyRevision": info.get("policyRevision"),
                    "complete": bool(row.complete),
                    "clusters": summary.get("clusters", 0),
                    "compliancePercent": summary.get("compliancePercent"),
                    "byState": summary.get("byState", {}),
                    "byPolicy": summary.get("byPolicy", {}),
                    "bySubscription": summary.get("bySubscription", {}),
                }
            )
        return out

    def cluster_history(self, cluster_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """One cluster across sweeps, newest first: sweep, time, state, extension version,
        and its finding codes (when did this drift start?)."""
        query = (
            select(
                cluster_verdicts.c.id,
                cluster_verdicts.c.sweep_id,
                sweeps.c.started_at,
                cluster_verdicts.c.state,
                cluster_verdicts.c.extension_version,
                cluster_verdicts.c.in_window,
            )
            .join(sweeps, sweeps.c.id == cluster_verdicts.c.sweep_id)
            .where(cluster_verdicts.c.cluster_key == id_key(cluster_id))
            .order_by(sweeps.c.started_at.desc(), sweeps.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            codes: dict[int, set[str]] = {}
            ids = [r.id for r in rows]
            for chunk in chunks(ids, 500):
                for f in conn.execute(
                    select(findings.c.verdict_id, findings.c.code).where(
                        findings.c.verdict_id.in_(chunk)
                    )
                ):
                    codes.setdefault(f.verdict_id, set()).add(f.code)
        return [
            {
                "sweepId": r.sweep_id,
                "startedAt": iso(r.started_at),
                "state": r.state,
                "extensionVersion": r.extension_version,
                "extensionVersionInWindow": r.in_window,
                "codes": sorted(codes.get(r.id, ())),
            }
            for r in rows
        ]

    # --- retention ------------------------------------------------------------------------

    def prune(self, retention_days: int, *, now: datetime | None = None, jobs: bool = False) -> int:
        """Delete sweeps that started more than ``retention_days`` ago, with their verdicts,
        policy states and findings; returns how many sweeps went.

        Children are deleted explicitly (not only by ON DELETE CASCADE) so that retention also
        works on a SQLite file opened elsewhere with foreign keys off. ``jobs=True`` also
        deletes finished jobs (and their ARM writes) older than the cutoff, and fingerprints
        that a newer one for the same setting has superseded; the latest fingerprint of every
        setting is always kept: it is what secret drift is judged against.
        """
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        cutoff = (utc(now) or now_utc()) - timedelta(days=retention_days)
        old = select(sweeps.c.id).where(sweeps.c.started_at < cutoff)
        with self._engine.begin() as conn:
            ids = list(conn.execute(old).scalars())
            for chunk in chunks(ids, 200):
                conn.execute(delete(findings).where(findings.c.sweep_id.in_(chunk)))
                conn.execute(delete(policy_states).where(policy_states.c.sweep_id.in_(chunk)))
                conn.execute(delete(cluster_verdicts).where(cluster_verdicts.c.sweep_id.in_(chunk)))
                conn.execute(delete(sweeps).where(sweeps.c.id.in_(chunk)))
            if jobs:
                old_jobs = list(
                    conn.execute(
                        select(jobs_table.c.id).where(
                            jobs_table.c.finished_at.is_not(None), jobs_table.c.finished_at < cutoff
                        )
                    ).scalars()
                )
                for chunk in chunks(old_jobs, 200):
                    conn.execute(delete(arm_writes).where(arm_writes.c.job_id.in_(chunk)))
                    conn.execute(delete(job_clusters).where(job_clusters.c.job_id.in_(chunk)))
                    conn.execute(delete(jobs_table).where(jobs_table.c.id.in_(chunk)))
                newer = fp_table.alias("newer")
                superseded = (
                    select(newer.c.id)
                    .where(
                        newer.c.resource_key == fp_table.c.resource_key,
                        newer.c.setting == fp_table.c.setting,
                        or_(
                            newer.c.applied_at > fp_table.c.applied_at,
                            and_(
                                newer.c.applied_at == fp_table.c.applied_at,
                                newer.c.id > fp_table.c.id,
                            ),
                        ),
                    )
                    .exists()
                )
                conn.execute(delete(fp_table).where(fp_table.c.applied_at < cutoff, superseded))
        return len(ids)


def _relative(ref: str) -> int | None:
    """How many finished sweeps back ``latest``, ``previous`` and ``latest~N`` point."""
    if ref == "latest":
        return 0
    if ref == "previous":
        return 1
    match = re.fullmatch(r"latest~(\d+)", ref)
    return int(match.group(1)) if match else None

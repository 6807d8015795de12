"""The compliance history: every sweep, every verdict, every remediation job and ARM write.

``History(url)`` opens (and, when older, upgrades: ``fleet.record.migrate``) a SQLAlchemy
database: a SQLite file by default (``Settings.effective_database_url``), PostgreSQL
(``postgresql+psycopg://...``) for shared installations. Reports are written whole
(``record_sweep``) or streamed while a sweep runs (``start_sweep``, ``add_clusters`` in batches,
``finish_sweep``), and read back exactly as recorded (``load_report``), one cluster at a time
when the fleet is large (``iter_clusters``).

What is stored is what the report holds (docs/contracts.md, Compliance vocabulary): the sweep
object, the summary, and each cluster's verdict as JSON, plus columns and child rows (policy
states, findings) for SQL queries and dashboards. Nothing here ever sees a secret: verdicts carry
none, ARM writes are recorded with a digest of the request body (``body_digest`` removes protected
settings before hashing), and applied secrets are kept as keyed fingerprints only.

The store knows nothing about rendering (``fleet.report``): the CLI composes the two.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import Select, Table, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from fleet.core import redact
from fleet.core.ids import key as id_key
from fleet.core.vocabulary import State
from fleet.record import migrate
from fleet.record.db import (
    JsonText,
    dumps,
    ensure_sqlite_dir,
    iso,
    make_engine,
    now_utc,
    parse_time,
    redacted,
    utc,
)
from fleet.record.schema import (
    applied_fingerprints as fp_table,
)
from fleet.record.schema import (
    arm_writes,
    cluster_verdicts,
    controls,
    findings,
    job_clusters,
    policy_states,
    sweeps,
)
from fleet.record.schema import (
    jobs as jobs_table,
)

__all__ = [
    "AmbiguousSweep",
    "DuplicateSweep",
    "History",
    "JobNotFound",
    "NoSweeps",
    "SweepNotFound",
    "body_digest",
]

#: Clusters per INSERT batch (executemany). Large enough to amortise round trips, small
#: enough that one batch of 50,000-cluster sweeps never holds much memory.
BATCH = 2000
#: Job statuses after which a job is over (``finished_at`` is set automatically).
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "stopped", "completed"})
_STATES = tuple(s.value for s in State)
_REPORT_KEYS = ("sweep", "summary", "clusters")
#: ``hmac-sha256:`` + hex, as ``fleet.desired.fingerprints.fingerprint`` makes them. Anything
#: else is refused: a caller passing a secret value by mistake must not get it stored.
_FINGERPRINT = re.compile(r"^(?:[a-z0-9-]+:)?[0-9a-f]{16,128}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: Keys whose values are secrets in ARM request bodies (their *names* are kept in digests).
_PROTECTED_KEYS = frozenset({"configurationprotectedsettings", "protectedsettings"})
_SECRET_LEAVES = frozenset(
    {
        "accountkey",
        "sastoken",
        "clientsecret",
        "clientcertificate",
        "clientcertificatepassword",
        "password",
    }
)
_ERROR_MESSAGE_MAX = 4000


class SweepNotFound(LookupError):
    """A sweep reference (``latest``, an id or a prefix) names no recorded sweep."""


class NoSweeps(SweepNotFound):
    """The database holds no finished sweep at all."""


class AmbiguousSweep(SweepNotFound):
    """A prefix matches more than one sweep."""


class DuplicateSweep(ValueError):
    """A sweep with this id is already recorded."""


class JobNotFound(LookupError):
    """A job reference (``latest``, an id or a unique prefix) names no recorded job."""


def body_digest(body: Any) -> str:
    """``sha256:<hex>`` of an ARM request body with its secrets removed.

    Protected settings keep their names but lose their values, so the digest changes when a
    setting is added or removed, yet a digest can never be used to confirm a guessed secret.
    """
    return "sha256:" + hashlib.sha256(dumps(_scrub(body)).encode()).hexdigest()


def _scrub(value: Any, *, protected: bool = False) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k in sorted(value, key=str):
            name = str(k)
            if protected or name.lower() in _PROTECTED_KEYS:
                out[name] = (
                    _scrub(value[k], protected=True)
                    if isinstance(value[k], Mapping)
                    else "<redacted>"
                )
            elif name.lower() in _SECRET_LEAVES:
                out[name] = "<redacted>"
            else:
                out[name] = _scrub(value[k])
        return out
    if isinstance(value, (list, tuple)):
        return [_scrub(v, protected=protected) for v in value]
    return "<redacted>" if protected else value


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _opt_str(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:limit]


class History:
    """The history database. Thread-safe (a pooled engine); use as a context manager."""

    def __init__(self, url: str) -> None:
        self.url = url
        ensure_sqlite_dir(url)
        self._engine = make_engine(url)
        self._postgres = self._engine.dialect.name == "postgresql"
        try:
            migrate.upgrade(url, engine=self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"History({redacted(self.url)!r})"

    # --- recording sweeps -----------------------------------------------------------------

    def record_sweep(self, report: Mapping[str, Any]) -> str:
        """Store a whole report (``fleet.report.model.build_report``) in one transaction."""
        info = dict(report["sweep"])
        extra = {k: v for k, v in report.items() if k not in _REPORT_KEYS}
        clusters = list(report.get("clusters") or ())
        with self._engine.begin() as conn:
            sweep_id = self._insert_sweep(conn, info, extra or None)
            for chunk in _chunks(clusters, BATCH):
                self._insert_clusters(conn, sweep_id, chunk)
            self._finish(conn, sweep_id, info, report.get("summary"))
        return sweep_id

    def start_sweep(self, info: Mapping[str, Any]) -> str:
        """Record a sweep that is starting (its verdicts follow with ``add_clusters``)."""
        with self._engine.begin() as conn:
            return self._insert_sweep(conn, dict(info), None)

    def add_clusters(self, sweep_id: str, clusters: Sequence[Mapping[str, Any]]) -> int:
        """Store verdicts (``Verdict.to_report()`` dicts) of a started sweep; one transaction."""
        if not clusters:
            return 0
        with self._engine.begin() as conn:
            self._require(conn, sweep_id)
            for chunk in _chunks(clusters, BATCH):
                self._insert_clusters(conn, sweep_id, chunk)
        return len(clusters)

    def finish_sweep(
        self, sweep_id: str, info: Mapping[str, Any], summary: Mapping[str, Any]
    ) -> None:
        """Record the final sweep object and summary (also for an interrupted sweep)."""
        with self._engine.begin() as conn:
            self._require(conn, sweep_id)
            self._finish(conn, sweep_id, dict(info), summary)

    def _require(self, conn: Connection, sweep_id: str) -> None:
        if conn.execute(select(sweeps.c.id).where(sweeps.c.id == sweep_id)).first() is None:
            raise SweepNotFound(f"no sweep {sweep_id!r} in {redacted(self.url)}")

    def _insert_sweep(
        self, conn: Connection, info: dict[str, Any], extra: dict[str, Any] | None
    ) -> str:
        sweep_id = str(info["id"])
        started = parse_time(info.get("startedAt")) or now_utc()
        values = {
            "id": sweep_id,
            "started_at": started,
            "finished_at": None,
            "policy_revision": str(info.get("policyRevision") or ""),
            "engine": str(info.get("engine") or "local"),
            "inventory": str(info.get("inventory") or "arm"),
            "complete": False,
            "interrupted": bool(info.get("interrupted", False)),
            "targets": int(info.get("targets") or 0),
            "cluster_count": 0,
            "findings_count": 0,
            **{f"n_{s}": 0 for s in _STATES},
            "requests": info.get("requests"),
            "info": info,
            "extra": extra,
        }
        duplicate = DuplicateSweep(f"sweep {sweep_id!r} is already recorded")
        if conn.execute(select(sweeps.c.id).where(sweeps.c.id == sweep_id)).first() is not None:
            raise duplicate
        try:
            conn.execute(insert(sweeps), values)
        except IntegrityError as exc:  # a concurrent writer won the race
            raise duplicate from exc
        return sweep_id

    def _finish(
        self,
        conn: Connection,
        sweep_id: str,
        info: dict[str, Any],
        summary: Mapping[str, Any] | None,
    ) -> None:
        summary = dict(summary) if summary is not None else None
        by_state = (summary or {}).get("byState") or {}
        totals = (summary or {}).get("findingsTotal") or {}
        finished = parse_time(info.get("finishedAt")) or now_utc()
        values: dict[str, Any] = {
            "finished_at": finished,
            "policy_revision": str(info.get("policyRevision") or ""),
            "engine": str(info.get("engine") or "local"),
            "inventory": str(info.get("inventory") or "arm"),
            "complete": bool(info.get("complete", True)),
            "interrupted": bool(info.get("interrupted", False)),
            "targets": int(info.get("targets") or 0),
            "cluster_count": int((summary or {}).get("clusters") or 0),
            "compliance_percent": (summary or {}).get("compliancePercent"),
            "findings_count": int(sum(v for v in totals.values() if isinstance(v, int))),
            **{f"n_{s}": int(by_state.get(s) or 0) for s in _STATES},
            "requests": info.get("requests"),
            "summary": summary,
            "info": info,
        }
        if info.get("startedAt"):
            values["started_at"] = parse_time(info["startedAt"])
        conn.execute(update(sweeps).where(sweeps.c.id == sweep_id).values(**values))

    def _insert_clusters(
        self, conn: Connection, sweep_id: str, clusters: Sequence[Mapping[str, Any]]
    ) -> None:
        rows = []
        for c in clusters:
            window = c.get("extensionVersionInWindow")
            cluster_id = str(c["id"])
            rows.append(
                {
                    "sweep_id": sweep_id,
                    "cluster_id": cluster_id,
                    "cluster_key": id_key(cluster_id),
                    "name": str(c.get("name") or ""),
                    "type": str(c.get("type") or ""),
                    "subscription_id": str(c.get("subscriptionId") or ""),
                    "resource_group": str(c.get("resourceGroup") or ""),
                    "location": str(c.get("location") or ""),
                    "state": str(c["state"]),
                    "status": _opt_str(c.get("status"), 64),
                    "extension_version": _opt_str(c.get("extensionVersion"), 64),
                    "in_window": window if isinstance(window, bool) else None,
                    "tags": c.get("tags") or {},
                    "verdict": c,
                }
            )
        ids = self._insert_verdicts(conn, rows)
        policy_rows: list[dict[str, Any]] = []
        finding_rows: list[dict[str, Any]] = []
        for verdict_id, c in zip(ids, clusters, strict=True):
            for p in c.get("policies") or ():
                policy_rows.append(
                    {
                        "sweep_id": sweep_id,
                        "verdict_id": verdict_id,
                        "policy": str(p["name"]),
                        "state": str(p["state"]),
                        "mode": _opt_str(p.get("mode"), 16),
                    }
                )
            for f in c.get("findings") or ():
                finding_rows.append(
                    {
                        "sweep_id": sweep_id,
                        "verdict_id": verdict_id,
                        "code": str(f["code"]),
                        "policy": f.get("policy"),
                        "resource": str(f.get("resource") or c["id"]),
                        "path": f.get("path"),
                        "desired": f.get("desired"),
                        "actual": f.get("actual"),
                        "message": str(f.get("message") or ""),
                        "severity": str(f.get("severity") or "medium"),
                    }
                )
        if self._postgres:
            _copy(conn, policy_states, policy_rows)
            _copy(conn, findings, finding_rows)
        else:
            if policy_rows:
                conn.execute(insert(policy_states), policy_rows)
            if finding_rows:
                conn.execute(insert(findings), finding_rows)

    def _insert_verdicts(self, conn: Connection, rows: list[dict[str, Any]]) -> Sequence[int]:
        """Insert verdict rows; their ids, in the order of ``rows`` (children reference them)."""
        if self._postgres:
            # PostgreSQL: take the ids from the sequence in one round trip, then COPY. A
            # multi-row INSERT ... RETURNING of 50,000 verdicts spent most of its time having
            # psycopg parse megabytes of SQL; COPY is several times faster.
            ids = sorted(
                conn.execute(
                    text(
                        "SELECT nextval(pg_get_serial_sequence('cluster_verdicts', 'id')) "
                        "FROM generate_series(1, :n)"
                    ),
                    {"n": len(rows)},
                ).scalars()
            )
            for row, verdict_id in zip(rows, ids, strict=True):
                row["id"] = verdict_id
            _copy(conn, cluster_verdicts, rows)
            return ids
        # SQLite: RETURNING in parameter order, one statement per page; the ids line up.
        return (
            conn.execute(
                insert(cluster_verdicts).returning(
                    cluster_verdicts.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            .scalars()
            .all()
        )

    # --- reading sweeps -------------------------------------------------------------------

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
            for chunk in _chunks(ids, 500):
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
            for chunk in _chunks(ids, 200):
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
                for chunk in _chunks(old_jobs, 200):
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

    # --- remediation jobs -----------------------------------------------------------------

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

    # --- the audit trail of ARM writes ----------------------------------------------------

    def record_write(
        self,
        *,
        job_id: str | None,
        cluster_id: str,
        resource_id: str,
        action: str,
        method: str,
        body_digest: str | None = None,
        principal: str | None = None,
        correlation_id: str | None = None,
        wave: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        outcome: str = "pending",
        status_code: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        continuation_token: str | None = None,
    ) -> int:
        """Record one ARM write (PUT/PATCH/DELETE); returns its id for ``finish_write``.

        There is no body parameter on purpose: pass ``body_digest(body)``. Error messages are
        masked (``fleet.core.redact``) and truncated before they are stored.
        """
        if body_digest is not None and not _DIGEST.match(body_digest):
            raise ValueError(
                "body_digest must be 'sha256:' + 64 hex digits "
                "(use fleet.record.history.body_digest)"
            )
        values = {
            "job_id": job_id,
            "cluster_id": cluster_id,
            "cluster_key": id_key(cluster_id),
            "resource_id": resource_id,
            "action": action,
            "method": method.upper(),
            "body_digest": body_digest,
            "principal": principal,
            "correlation_id": correlation_id,
            "wave": wave,
            "started_at": utc(started_at) or now_utc(),
            "finished_at": utc(finished_at),
            "outcome": outcome,
            "status_code": status_code,
            "error_code": _opt_str(error_code, 256),
            "error_message": _clean_message(error_message),
            "continuation_token": _token(continuation_token),
        }
        with self._engine.begin() as conn:
            return int(
                conn.execute(insert(arm_writes).returning(arm_writes.c.id), values).scalar_one()
            )

    def finish_write(
        self,
        write_id: int,
        *,
        outcome: str,
        finished_at: datetime | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Record how a write ended (a long-running operation finishes after it starts)."""
        values: dict[str, Any] = {
            "outcome": outcome,
            "finished_at": utc(finished_at) or now_utc(),
            "error_code": _opt_str(error_code, 256),
            "error_message": _clean_message(error_message),
        }
        if status_code is not None:
            values["status_code"] = status_code
        if correlation_id is not None:
            values["correlation_id"] = correlation_id
        with self._engine.begin() as conn:
            done = conn.execute(
                update(arm_writes).where(arm_writes.c.id == write_id).values(**values)
            )
            if done.rowcount == 0:
                raise KeyError(f"no ARM write {write_id}")

    def writes(
        self, job_id: str | None = None, cluster_id: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """ARM writes in the order they were made, filtered by job and/or cluster."""
        query = select(arm_writes).order_by(arm_writes.c.id)
        if job_id is not None:
            query = query.where(arm_writes.c.job_id == job_id)
        if cluster_id is not None:
            query = query.where(arm_writes.c.cluster_key == id_key(cluster_id))
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return [_write(row) for row in conn.execute(query)]

    def set_write_operation(
        self,
        write_id: int,
        *,
        continuation_token: str | None,
        correlation_id: str | None = None,
        outcome: str = "running",
    ) -> None:
        """Record that ARM accepted a write: its operation's continuation token (persisted so
        another process can resume polling) and ARM's correlation id."""
        values: dict[str, Any] = {
            "outcome": outcome,
            "continuation_token": _token(continuation_token),
        }
        if correlation_id is not None:
            values["correlation_id"] = correlation_id
        with self._engine.begin() as conn:
            done = conn.execute(
                update(arm_writes).where(arm_writes.c.id == write_id).values(**values)
            )
            if done.rowcount == 0:
                raise KeyError(f"no ARM write {write_id}")

    # --- remediation job state: clusters, cancel, approvals -------------------------------

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
                "reason": _clean_message(c.get("reason")),
                "facts": c.get("facts"),
                "actions": c.get("actions"),
                "outcome": c.get("outcome"),
                "updated_at": at,
            }
            for c in clusters
        ]
        with self._engine.begin() as conn:
            for chunk in _chunks(rows, BATCH):
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
            "reason": _clean_message(reason),
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

    def request_cancel(self, job_id: str) -> dict[str, Any]:
        """Ask a running job to stop (it checks between clusters and waves)."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id)
                .values(cancel_requested=True, updated_at=now_utc())
            )
            if done.rowcount == 0:
                raise JobNotFound(f"no job {job_id!r}")
        job = self.get_job(job_id)
        assert job is not None
        return job

    def cancel_requested(self, job_id: str) -> bool:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(jobs_table.c.cancel_requested).where(jobs_table.c.id == job_id)
            ).scalar()
        return bool(value)

    def approve(self, job_id: str, wave: str, *, by: str | None = None) -> dict[str, Any]:
        """Record the approval of ``wave`` (idempotent); returns the job."""
        with self._engine.begin() as conn:
            row = conn.execute(
                select(jobs_table.c.approvals).where(jobs_table.c.id == job_id)
            ).first()
            if row is None:
                raise JobNotFound(f"no job {job_id!r}")
            approvals = list(row.approvals or [])
            if not any(a.get("wave") == wave for a in approvals):
                approvals.append({"wave": wave, "by": by, "at": iso(now_utc())})
                conn.execute(
                    update(jobs_table)
                    .where(jobs_table.c.id == job_id)
                    .values(approvals=approvals, updated_at=now_utc())
                )
        job = self.get_job(job_id)
        assert job is not None
        return job

    def approved(self, job_id: str, wave: str) -> bool:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(jobs_table.c.approvals).where(jobs_table.c.id == job_id)
            ).scalar()
        return any(a.get("wave") == wave for a in (value or []))

    # --- installation-wide controls (the kill switch) -------------------------------------

    def control(self, name: str) -> dict[str, Any] | None:
        """A control's value (with ``updatedAt``/``updatedBy``), or None when never set."""
        with self._engine.connect() as conn:
            row = conn.execute(select(controls).where(controls.c.name == name)).first()
        if row is None or row.value is None:
            return None
        value = dict(row.value)
        value.update(updatedAt=iso(row.updated_at), updatedBy=row.updated_by)
        return value

    def set_control(
        self, name: str, value: Mapping[str, Any] | None, *, by: str | None = None
    ) -> None:
        """Set (or, with None, clear) a control; the last writer wins."""
        values = {
            "value": dict(value) if value is not None else None,
            "updated_at": now_utc(),
            "updated_by": by,
        }
        with self._engine.begin() as conn:
            done = conn.execute(update(controls).where(controls.c.name == name).values(**values))
            if done.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(controls).values(name=name, **values))
                except IntegrityError:  # another process inserted it meanwhile
                    conn.execute(update(controls).where(controls.c.name == name).values(**values))

    # --- applied secret fingerprints ------------------------------------------------------

    def record_fingerprints(
        self,
        resource_id: str,
        fingerprints: Mapping[str, str],
        job_id: str | None = None,
        *,
        applied_at: datetime | None = None,
    ) -> int:
        """Remember the fingerprints of the protected settings just applied to a resource."""
        at = utc(applied_at) or now_utc()
        rows = []
        for setting, fp in sorted(fingerprints.items()):
            if not isinstance(fp, str) or not _FINGERPRINT.match(fp):
                # Never echo the value: it may be the very secret that must not be stored.
                raise ValueError(
                    f"setting {setting!r}: not a fingerprint (expected hmac-sha256:<hex>)"
                )
            rows.append(
                {
                    "resource_key": id_key(resource_id),
                    "setting": setting,
                    "fingerprint": fp,
                    "applied_at": at,
                    "job_id": job_id,
                }
            )
        if rows:
            with self._engine.begin() as conn:
                conn.execute(insert(fp_table), rows)
        return len(rows)

    def applied_fingerprints(
        self, resource_keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, str]]:
        """The latest fingerprint per resource and setting: ``{resource key: {setting: fp}}``.

        ``resource_keys`` are ARM ids (any case; keys are lower-cased); None means every
        resource (what a sweep loads once at its start).
        """
        out: dict[str, dict[str, str]] = {}
        base = select(fp_table.c.resource_key, fp_table.c.setting, fp_table.c.fingerprint).order_by(
            fp_table.c.resource_key, fp_table.c.setting, fp_table.c.applied_at, fp_table.c.id
        )
        with self._engine.connect() as conn:
            if resource_keys is None:
                queries = [base]
            else:
                wanted = sorted({id_key(k) for k in resource_keys})
                queries = [
                    base.where(fp_table.c.resource_key.in_(chunk)) for chunk in _chunks(wanted, 500)
                ]
            for query in queries:
                for row in conn.execute(query):
                    # Ordered by time: the last one seen is the latest.
                    out.setdefault(row.resource_key, {})[row.setting] = row.fingerprint
        return out


def _copy(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bulk-load rows with PostgreSQL's COPY, in the caller's transaction."""
    if not rows:
        return
    columns = list(rows[0])
    json_columns = {c.name for c in table.columns if isinstance(c.type, JsonText)}
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        names = ", ".join(columns)
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        dumps(row[c]) if c in json_columns and row[c] is not None else row[c]
                        for c in columns
                    ]
                )


def _relative(ref: str) -> int | None:
    """How many finished sweeps back ``latest``, ``previous`` and ``latest~N`` point."""
    if ref == "latest":
        return 0
    if ref == "previous":
        return 1
    match = re.fullmatch(r"latest~(\d+)", ref)
    return int(match.group(1)) if match else None


def _clean_message(message: str | None) -> str | None:
    if message is None:
        return None
    text = redact.text(message)
    return text if len(text) <= _ERROR_MESSAGE_MAX else text[: _ERROR_MESSAGE_MAX - 3] + "..."


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


def _write(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "jobId": row.job_id,
        "clusterId": row.cluster_id,
        "resourceId": row.resource_id,
        "action": row.action,
        "method": row.method,
        "bodyDigest": row.body_digest,
        "principal": row.principal,
        "correlationId": row.correlation_id,
        "wave": row.wave,
        "startedAt": iso(row.started_at),
        "finishedAt": iso(row.finished_at),
        "outcome": row.outcome,
        "statusCode": row.status_code,
        "errorCode": row.error_code,
        "errorMessage": row.error_message,
        "continuationToken": row.continuation_token,
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


def _token(token: str | None) -> str | None:
    """A continuation token to store; refused when it holds a registered secret value."""
    if token is not None and redact.text(token) != token:
        raise ValueError("a continuation token holding a secret value is never stored")
    return token

"""Per-cluster write locks in the history database: one job writes a cluster at a time.

The local engine's twin of the Redis locks the Celery engine takes (``fleet.record.jobstate``),
with the same calls: ``lock_cluster`` (re-entrant for the job that holds it), ``unlock_clusters``
(only the holder's own locks), ``cluster_lock_holder``. Every fleet process of an installation
shares the history database, so two terminals, or the server and a terminal, see each other's
locks. A lock carries an expiry: one left by a process that died frees the cluster after
``ttl_seconds``, and a job that resumes under the same id takes its own locks back at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from fleet.core.ids import key as id_key
from fleet.record.db import Store, now_utc, utc
from fleet.record.schema import cluster_locks


class ClusterLocks(Store):
    """Takes and releases cluster write locks (a part of ``History``)."""

    def lock_cluster(self, cluster: str, job_id: str, *, ttl_seconds: int) -> bool:
        """Take the cluster for ``job_id`` (True), or find it held by another job (False)."""
        k = id_key(cluster)
        now = now_utc()
        values = {
            "job_id": job_id,
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=ttl_seconds),
        }
        with self._engine.begin() as conn:
            taken = conn.execute(
                update(cluster_locks)
                .where(
                    cluster_locks.c.cluster_key == k,
                    or_(cluster_locks.c.job_id == job_id, cluster_locks.c.expires_at < now),
                )
                .values(**values)
            )
            if taken.rowcount:
                return True
            try:
                with conn.begin_nested():
                    conn.execute(insert(cluster_locks).values(cluster_key=k, **values))
            except IntegrityError:  # held by a live lock of another job
                return False
        return True

    def unlock_cluster(self, cluster: str, job_id: str) -> None:
        self.unlock_clusters([cluster], job_id)

    def unlock_clusters(self, clusters: Iterable[str], job_id: str) -> None:
        """Release the locks ``job_id`` holds on ``clusters`` (others' locks stay)."""
        keys = [id_key(c) for c in clusters]
        if not keys:
            return
        with self._engine.begin() as conn:
            for start in range(0, len(keys), 500):
                conn.execute(
                    delete(cluster_locks).where(
                        cluster_locks.c.job_id == job_id,
                        cluster_locks.c.cluster_key.in_(keys[start : start + 500]),
                    )
                )

    def cluster_lock_holder(self, cluster: str) -> str | None:
        """The job holding a live lock on the cluster, if any."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(cluster_locks.c.job_id, cluster_locks.c.expires_at).where(
                    cluster_locks.c.cluster_key == id_key(cluster)
                )
            ).first()
        if row is None or (utc(row.expires_at) or now_utc()) < now_utc():
            return None
        return str(row.job_id)

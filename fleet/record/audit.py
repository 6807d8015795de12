"""The audit trail of ARM writes: every PUT, PATCH and DELETE fleet sends, and how it ended.

A write is recorded before it is sent (``record_write``), gets its long-running operation's
continuation token when ARM accepts it (``set_write_operation``, so another process can resume
polling), and its outcome when it ends (``finish_write``). Nothing here ever sees a secret: a
write is recorded with a digest of its request body (``body_digest`` removes protected settings
before hashing), error messages are masked, and a continuation token holding a registered
secret value is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row

from fleet.core import redact
from fleet.core.ids import key as id_key
from fleet.record.db import Store, clean_message, clip, dumps, iso, now_utc, utc
from fleet.record.schema import arm_writes

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


class AuditTrail(Store):
    """Records ARM writes and reads them back (a part of ``History``)."""

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
                "body_digest must be 'sha256:' + 64 hex digits (use fleet.record.audit.body_digest)"
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
            "error_code": clip(error_code, 256),
            "error_message": clean_message(error_message),
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
            "error_code": clip(error_code, 256),
            "error_message": clean_message(error_message),
        }
        if status_code is not None:
            values["status_code"] = status_code
        if correlation_id is not None:
            values["correlation_id"] = correlation_id
        self._update_write(write_id, values)

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
        self._update_write(write_id, values)

    def _update_write(self, write_id: int, values: Mapping[str, Any]) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(arm_writes).where(arm_writes.c.id == write_id).values(**values)
            )
            if done.rowcount == 0:
                raise KeyError(f"no ARM write {write_id}")


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


def _token(token: str | None) -> str | None:
    """A continuation token to store; refused when it holds a registered secret value."""
    if token is not None and redact.text(token) != token:
        raise ValueError("a continuation token holding a secret value is never stored")
    return token

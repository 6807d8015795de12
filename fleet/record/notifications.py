"""The notification outbox and the ledger of announced findings (a part of ``History``).

Events are written here first, in the transaction that also records which findings they
announce, and delivered afterwards (``fleet.notify.delivery``): a webhook that is down never
loses an event and never holds up the sweep or job that produced it. One row per event and
target; a target is named by its label (``teams:env:TEAMS_HOOK``), never by its URL.

Delivery is at least once. A row is claimed by moving its ``next_attempt_at`` past "now" in a
conditional UPDATE, so two processes delivering at once (a sweep's end and the beat) do not
both send it; a deliverer that dies holding a claim only delays the row until the lease ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fleet.record.db import Store, chunks, iso, now_utc, utc
from fleet.record.schema import notify_findings, notify_outbox

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def _row(r: Any) -> dict[str, Any]:
    return {
        "eventId": r.event_id,
        "target": r.target,
        "type": r.type,
        "subject": r.subject,
        "status": r.status,
        "attempts": r.attempts,
        "createdAt": iso(r.created_at),
        "nextAttemptAt": iso(r.next_attempt_at) if r.status == PENDING else None,
        "deliveredAt": iso(r.delivered_at),
        "lastError": r.last_error,
    }


class Notifications(Store):
    """Queues events for delivery and remembers what was announced (a part of ``History``)."""

    def enqueue_notifications(
        self,
        events: Sequence[Mapping[str, Any]],
        targets: Sequence[str],
        *,
        announced: Mapping[str, str] | None = None,
        sweep_id: str | None = None,
    ) -> int:
        """Queue each event (``{"id", "type", "subject", ...}``) for each target, and record
        the findings' announced states, in one transaction. An event already queued for a
        target is left as it is (a redelivered finaliser queues the same ids again). Returns
        how many rows were added."""
        now = now_utc()
        added = 0
        with self._engine.begin() as conn:
            for event in events:
                for target in targets:
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                insert(notify_outbox).values(
                                    event_id=event["id"],
                                    target=target,
                                    type=event["type"],
                                    subject=event.get("subject"),
                                    event=dict(event),
                                    status=PENDING,
                                    attempts=0,
                                    created_at=now,
                                    next_attempt_at=now,
                                )
                            )
                        added += 1
                    except IntegrityError:
                        pass  # queued already
            items = sorted((announced or {}).items())
            for chunk in chunks(items, 500):
                keys = [k for k, _ in chunk]
                conn.execute(delete(notify_findings).where(notify_findings.c.key.in_(keys)))
                conn.execute(
                    insert(notify_findings),
                    [
                        {"key": k, "state": state, "sweep_id": sweep_id, "updated_at": now}
                        for k, state in chunk
                    ],
                )
        return added

    def announced_states(self, keys: Iterable[str]) -> dict[str, str]:
        """The last announced state (``drift`` / ``fixed``) of each of these finding keys."""
        out: dict[str, str] = {}
        with self._engine.connect() as conn:
            for chunk in chunks(sorted(set(keys)), 500):
                query = select(notify_findings.c.key, notify_findings.c.state).where(
                    notify_findings.c.key.in_(chunk)
                )
                out.update({r.key: r.state for r in conn.execute(query)})
        return out

    def due_notifications(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Pending rows whose next attempt is due, oldest first, with their events."""
        query = (
            select(notify_outbox)
            .where(notify_outbox.c.status == PENDING, notify_outbox.c.next_attempt_at <= now)
            .order_by(notify_outbox.c.created_at, notify_outbox.c.event_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [{**_row(r), "event": r.event} for r in conn.execute(query)]

    def claim_notification(
        self, event_id: str, target: str, *, now: datetime, until: datetime
    ) -> bool:
        """Take a due row for delivery until ``until``; False when another process has it."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(notify_outbox)
                .where(
                    notify_outbox.c.event_id == event_id,
                    notify_outbox.c.target == target,
                    notify_outbox.c.status == PENDING,
                    notify_outbox.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=until)
            )
        return bool(done.rowcount)

    def settle_notification(
        self,
        event_id: str,
        target: str,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """Record an attempt: delivered, failed for good, or pending until ``next_attempt_at``.
        A delivered row keeps the error of its last failed attempt (why it took several)."""
        values: dict[str, Any] = {"status": status, "attempts": attempts}
        if error is not None:
            values["last_error"] = error
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if status == DELIVERED:
            values["delivered_at"] = now_utc()
        with self._engine.begin() as conn:
            conn.execute(
                update(notify_outbox)
                .where(notify_outbox.c.event_id == event_id, notify_outbox.c.target == target)
                .values(**values)
            )

    def make_notifications_due(self) -> int:
        """Make every pending row due now (``fleet notify send --now``); returns how many."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(notify_outbox)
                .where(notify_outbox.c.status == PENDING)
                .values(next_attempt_at=now_utc())
            )
        return int(done.rowcount)

    def next_notification_due(self) -> datetime | None:
        """When the earliest pending row is due (None: nothing pending)."""
        with self._engine.connect() as conn:
            found = conn.execute(
                select(func.min(notify_outbox.c.next_attempt_at)).where(
                    notify_outbox.c.status == PENDING
                )
            ).scalar()
        return utc(found)

    def notification_counts(self) -> dict[str, dict[str, int]]:
        """Rows per target and status: ``{"teams:env:HOOK": {"pending": 1, ...}}``."""
        query = select(
            notify_outbox.c.target, notify_outbox.c.status, func.count().label("n")
        ).group_by(notify_outbox.c.target, notify_outbox.c.status)
        out: dict[str, dict[str, int]] = {}
        with self._engine.connect() as conn:
            for r in conn.execute(query):
                out.setdefault(r.target, {})[r.status] = int(r.n)
        return out

    def notifications(self, *, limit: int = 20, status: str | None = None) -> list[dict[str, Any]]:
        """The newest rows (without their events), optionally of one status."""
        query = (
            select(notify_outbox)
            .order_by(notify_outbox.c.created_at.desc(), notify_outbox.c.event_id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(notify_outbox.c.status == status)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def prune_notifications(self, cutoff: datetime) -> None:
        """Forget delivered and failed rows, and fixed findings, older than ``cutoff``."""
        with self._engine.begin() as conn:
            conn.execute(
                delete(notify_outbox).where(
                    notify_outbox.c.status != PENDING, notify_outbox.c.created_at < cutoff
                )
            )
            conn.execute(
                delete(notify_findings).where(
                    notify_findings.c.state == "fixed", notify_findings.c.updated_at < cutoff
                )
            )

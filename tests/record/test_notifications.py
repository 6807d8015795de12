"""The notification outbox and the announced-findings ledger (``fleet.record.notifications``),
on SQLite and PostgreSQL: queueing is idempotent, a due row is claimed by one deliverer only,
attempts settle as delivered, pending or failed, and old rows are pruned."""

from __future__ import annotations

from datetime import timedelta

from fleet.record.db import now_utc
from fleet.record.history import open_history


def _event(n: int) -> dict[str, object]:
    return {"id": f"e{n}", "type": "fleet.sweep.drift", "subject": "s1", "time": "t", "data": {}}


def test_queue_claim_and_settle(db_url: str) -> None:
    with open_history(db_url, upgrade=True) as history:
        added = history.enqueue_notifications(
            [_event(1), _event(2)], ["a", "b"], announced={"k1": "drift"}, sweep_id="s1"
        )
        assert added == 4
        # A finaliser run twice queues nothing new, and the ledger keeps one row per key.
        assert history.enqueue_notifications([_event(1)], ["a"], announced={"k1": "fixed"}) == 0
        assert history.announced_states(["k1", "k2"]) == {"k1": "fixed"}

        now = now_utc()
        due = history.due_notifications(now)
        assert [(r["eventId"], r["target"]) for r in due] == [
            ("e1", "a"),
            ("e1", "b"),
            ("e2", "a"),
            ("e2", "b"),
        ]
        assert due[0]["event"]["type"] == "fleet.sweep.drift"
        lease = now + timedelta(seconds=30)
        assert history.claim_notification("e1", "a", now=now, until=lease)
        assert not history.claim_notification("e1", "a", now=now, until=lease)  # taken

        history.settle_notification("e1", "a", status="delivered", attempts=1)
        later = now + timedelta(seconds=60)
        history.settle_notification(
            "e1", "b", status="pending", attempts=1, next_attempt_at=later, error="HTTP 500"
        )
        history.settle_notification("e2", "a", status="failed", attempts=16, error="timed out")
        assert history.notification_counts() == {
            "a": {"delivered": 1, "failed": 1},
            "b": {"pending": 2},
        }
        assert [r["eventId"] for r in history.due_notifications(now_utc())] == ["e2"]
        assert history.make_notifications_due() == 2
        assert len(history.due_notifications(now_utc())) == 2
        rows = {(r["eventId"], r["target"]): r for r in history.notifications(limit=10)}
        assert rows[("e1", "b")]["lastError"] == "HTTP 500"
        assert rows[("e1", "a")]["deliveredAt"] is not None

        history.prune_notifications(now_utc() + timedelta(seconds=1))
        assert history.notification_counts() == {"b": {"pending": 2}}
        assert history.announced_states(["k1"]) == {}  # a fixed finding is forgotten

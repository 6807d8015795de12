"""Delivery: the outbox's pending events POSTed to their webhooks, with retries, exponential
backoff and jitter, in a bounded time.

``deliver`` is called at the end of every sweep and job (``fleet.notify.announce``), by
``fleet notify send`` and by the Celery beat every minute. It takes the rows that are due,
claims each one (``History.claim_notification``: two deliverers never send a row at once),
renders it for its target and POSTs it; a failed attempt is due again after
``FLEET_NOTIFY_BACKOFF_SECONDS`` doubled per attempt (capped at an hour, with jitter), until
``FLEET_NOTIFY_MAX_ATTEMPTS`` have failed. While time is left it waits for the next retry,
so a receiver that answers 500 once is retried within the same run; what is still pending at
the deadline waits for a later run. Nothing here raises for a delivery that fails.

What is recorded about a failure is a status code or an error class, never an exception's
text: HTTP libraries quote the URL in their messages, and the URL is the credential.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from fleet.core.errors import FleetError
from fleet.notify.events import Event
from fleet.notify.render import FORMATS
from fleet.notify.targets import Target, configured
from fleet.record.db import now_utc
from fleet.record.history import History
from fleet.record.notifications import DELIVERED, FAILED, PENDING
from fleet.settings import Settings

log = logging.getLogger(__name__)

#: The longest wait between two attempts of one event.
MAX_BACKOFF = 3600.0
#: Rows taken from the outbox per query.
BATCH = 50
USER_AGENT = "fleet-notify/1"


def backoff(attempts: int, base: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: ``base`` doubled per failed attempt, capped,
    half of it random ("equal jitter"), so pending events spread out instead of retrying in
    step."""
    delay = min(MAX_BACKOFF, base * 2.0 ** max(0, attempts - 1))
    jitter: float = (rng or random).uniform(0, delay / 2)
    return delay / 2 + jitter


@dataclass
class Delivery:
    """What one run did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
            "errors": dict(sorted(self.errors.items())),
        }


def _post(session: requests.Session, target: Target, event: Event, timeout: float) -> str | None:
    """Send one event; None when the receiver took it, else what went wrong (no URL in it)."""
    try:
        url = target.url()
    except FleetError as exc:  # an unreadable reference or a bad URL: names the label only
        return str(exc)
    headers, body = FORMATS[target.format](event)
    try:
        response = session.post(
            url,
            data=body,
            headers={**headers, "user-agent": USER_AGENT},
            timeout=timeout,
            # A redirect would carry the event (and a URL-borne token) to another host.
            allow_redirects=False,
        )
        response.close()
    except requests.Timeout:
        return "timed out"
    except requests.ConnectionError:
        return "connection failed"
    except requests.RequestException as exc:
        return exc.__class__.__name__
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def deliver(
    history: History,
    settings: Settings,
    *,
    seconds: float | None = None,
    now_too: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Deliver what is due for at most ``seconds`` (``FLEET_NOTIFY_DELIVER_SECONDS``).
    ``now_too``: also what waits for its backoff (``fleet notify send --now``)."""
    budget = settings.notify_deliver_seconds if seconds is None else seconds
    done = Delivery()
    if budget <= 0:
        return done
    deadline = clock() + budget
    targets = {t.label: t for t in configured(settings)}
    if now_too:
        history.make_notifications_due()
    with requests.Session() as session:
        while clock() < deadline:
            now = now_utc()
            rows = history.due_notifications(now, limit=BATCH)
            for row in rows:
                if clock() >= deadline:
                    break
                _attempt(history, settings, session, targets, row, done, now, deadline, clock)
            if rows:
                continue
            due = history.next_notification_due()
            if due is None:
                break
            wait = (due - now_utc()).total_seconds()
            if wait > deadline - clock():
                break
            sleep(max(0.0, wait))
    return done


def _attempt(
    history: History,
    settings: Settings,
    session: requests.Session,
    targets: dict[str, Target],
    row: dict[str, object],
    done: Delivery,
    now: datetime,
    deadline: float,
    clock: Callable[[], float],
) -> None:
    event_id, label = str(row["eventId"]), str(row["target"])
    timeout = max(0.1, min(settings.notify_timeout, deadline - clock()))
    lease = now_utc() + timedelta(seconds=timeout + 30)
    if not history.claim_notification(event_id, label, now=now, until=lease):
        return  # another process is sending it
    target = targets.get(label)
    event = Event.from_json(row["event"])  # type: ignore[arg-type]
    if target is None:
        error: str | None = f"target {label} is not in this process's FLEET_NOTIFY_URLS"
    else:
        error = _post(session, target, event, timeout)
    attempts = int(row["attempts"]) + 1  # type: ignore[call-overload]
    if error is None:
        history.settle_notification(event_id, label, status=DELIVERED, attempts=attempts)
        done.delivered += 1
        log.info("notification %s %s delivered to %s", event.type, event_id, label)
        return
    done.errors[label] = error
    if attempts >= settings.notify_max_attempts:
        history.settle_notification(
            event_id, label, status=FAILED, attempts=attempts, error=error[:256]
        )
        done.failed += 1
        log.warning(
            "notification %s %s to %s given up after %d attempts: %s",
            event.type,
            event_id,
            label,
            attempts,
            error,
        )
        return
    delay = backoff(attempts, settings.notify_backoff_seconds)
    history.settle_notification(
        event_id,
        label,
        status=PENDING,
        attempts=attempts,
        next_attempt_at=now_utc() + timedelta(seconds=delay),
        error=error[:256],
    )
    done.retrying += 1
    log.warning(
        "notification %s %s to %s failed (%s); retry in %.0fs",
        event.type,
        event_id,
        label,
        error,
        delay,
    )

"""The one function per occurrence that both engines call: a sweep recorded, a job waiting
for an approval, a job ended, and the beat's look for scheduled sweeps that did not run.

Each builds its events from what the history database holds (so the local engine and the
Celery finalisers, which both record there first, announce exactly the same), queues them in
the outbox with the findings they announce, in one transaction, and then delivers for at most
``FLEET_NOTIFY_DELIVER_SECONDS``. None of them raises: a notification problem is logged and
never fails the sweep or the job. Without ``FLEET_NOTIFY_URLS`` they do nothing at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from fleet.notify.delivery import Delivery, deliver
from fleet.notify.events import (
    Event,
    Thresholds,
    awaiting_approval,
    finding_hash,
    job_events,
    missed_sweeps,
    sweep_events,
)
from fleet.notify.targets import Target, configured
from fleet.policy.loading import PolicySet
from fleet.record.db import now_utc, parse_time
from fleet.record.history import History
from fleet.report.changes import diff
from fleet.settings import Settings

log = logging.getLogger(__name__)

#: How far back the previous complete sweep of the same policies is looked for.
BASELINE_DEPTH = 50
#: Recorded sweeps the missed-schedule check reads (newest first).
SWEEPS_READ = 500


def _targets(settings: Settings) -> list[Target]:
    try:
        return configured(settings)
    except Exception as exc:  # a bad entry must not fail the sweep either
        log.warning("notifications off: %s", exc)
        return []


def _queue(
    settings: Settings,
    history: History,
    targets: Sequence[Target],
    events: Sequence[Event],
    *,
    announced: Mapping[str, str] | None = None,
    sweep_id: str | None = None,
) -> None:
    history.enqueue_notifications(
        [e.to_json() for e in events],
        [t.label for t in targets],
        announced=announced,
        sweep_id=sweep_id,
    )
    history.prune_notifications(now_utc() - timedelta(days=settings.retention_days))
    for e in events:
        log.info("notification %s %s queued (%s)", e.type, e.id, e.subject)


def deliver_pending(settings: Settings, history: History, **options: Any) -> Delivery:
    """Deliver what is due (``fleet.notify.delivery.deliver``), never raising."""
    try:
        return deliver(history, settings, **options)
    except Exception as exc:
        log.warning("notification delivery failed: %s", exc)
        log.debug("notification delivery", exc_info=True)
        return Delivery()


def baseline(history: History, sweep_id: str, policies: Sequence[str]) -> str | None:
    """The previous complete sweep of the same policies (a scheduled sweep of one policy is
    compared with the last one of that policy, not with a sweep of everything)."""
    wanted = sorted(policies)
    current = sweep_id
    for _ in range(BASELINE_DEPTH):
        found = history.previous(current, complete_only=True)
        if found is None:
            return None
        if sorted(history.header(found)["sweep"].get("policies") or ()) == wanted:
            return found
        current = found
    return None


def _sweep_events(settings: Settings, history: History, sweep_id: str) -> tuple[Any, ...] | None:
    head = history.header(sweep_id)
    info = head["sweep"]
    if not info.get("complete"):
        # Clusters it never judged would look fixed; the next complete sweep compares with
        # the last complete one, so nothing is lost by waiting for it.
        log.info("sweep %s is incomplete: no drift notifications", sweep_id)
        return None
    previous = baseline(history, sweep_id, info.get("policies") or ())
    if previous is None:
        log.info("sweep %s has no earlier complete sweep of its policies to compare", sweep_id)
        return None
    before = history.header(previous)
    changes = diff(
        history.iter_clusters(previous),
        history.iter_clusters(sweep_id),
        before_info=before["sweep"],
        after_info=info,
    )
    keys = [finding_hash(e) for e in (*changes["newDrift"], *changes["fixed"])]
    notice = sweep_events(
        changes,
        sweep=info,
        summary=head["summary"],
        previous=before["sweep"],
        previous_summary=before["summary"],
        announced=history.announced_states(keys),
        thresholds=Thresholds(settings.notify_digest_threshold, settings.notify_compliance_drop),
    )
    return notice.events, notice.announced


def sweep_finished(settings: Settings, history: History, sweep_id: str) -> None:
    """Announce what a recorded sweep found new or fixed since the previous complete sweep of
    the same policies, and a compliance drop (``run_sweep`` and ``sweep_finalize`` call it)."""
    targets = _targets(settings)
    if not targets:
        return
    try:
        found = _sweep_events(settings, history, sweep_id)
        if found is not None:
            events, announced = found
            _queue(settings, history, targets, events, announced=announced, sweep_id=sweep_id)
    except Exception as exc:
        log.warning("notifications of sweep %s failed: %s", sweep_id, exc)
        log.debug("notifications of sweep %s", sweep_id, exc_info=True)
    deliver_pending(settings, history)


def _announce(settings: Settings, history: History, events: Sequence[Event], what: str) -> None:
    targets = _targets(settings)
    if not targets:
        return
    try:
        _queue(settings, history, targets, events)
    except Exception as exc:
        log.warning("notifications of %s failed: %s", what, exc)
        log.debug("notifications of %s", what, exc_info=True)
    deliver_pending(settings, history)


def job_awaiting_approval(
    settings: Settings, history: History, job_id: str, wave: str, policy: str | None
) -> None:
    """Announce a job waiting at a wave's approval gate (both engines' approval waits)."""
    event = awaiting_approval(job_id, wave, policy, now_utc().isoformat())
    _announce(settings, history, [event], f"job {job_id}")


def job_finished(settings: Settings, history: History, report: Mapping[str, Any]) -> None:
    """Announce an ended job from its report (``JobResult.report(clusters=False)``): the
    failure-budget stop, and ``fleet.job.finished`` (both engines' ends call it)."""
    _announce(settings, history, job_events(report), f"job {report['job']['id']}")


def schedules_missed(
    settings: Settings, history: History, policy_set: PolicySet, now: datetime | None = None
) -> list[Event]:
    """Queue ``fleet.sweep.missed`` for scheduled policies whose last due sweep did not start
    (the Celery beat calls it every minute); returns the events found."""
    targets = _targets(settings)
    schedules = {
        p.name: p.spec.remediation.schedule
        for p in policy_set.policies
        if p.spec.remediation.schedule
    }
    if not targets or not schedules:
        return []
    started: dict[str, list[datetime]] = {}
    for entry in history.sweeps(limit=SWEEPS_READ):
        info = entry["sweep"] or {}
        when = parse_time(info.get("startedAt"))
        if when is None:
            continue
        for name in info.get("policies") or ():
            started.setdefault(name, []).append(when)
    events = missed_sweeps(
        schedules, started, now=now or now_utc(), grace=settings.notify_schedule_grace
    )
    if events:
        try:
            _queue(settings, history, targets, events)
        except Exception as exc:
            log.warning("notifications of missed sweeps failed: %s", exc)
    return events

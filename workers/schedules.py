"""Scheduled sweeps: each policy's ``remediation.schedule`` becomes a RedBeat entry.

``fleet.schedules.sync`` runs every minute under the beat (``celery -A workers beat``; RedBeat
holds a Redis lock, so a second beat waits instead of scheduling twice). It re-reads the policy
files named by ``FLEET_POLICY_PATHS`` and creates, updates or deletes one entry per scheduled
policy, so edits are picked up without restarting workers or the beat. An entry fires
``fleet.sweep.scheduled``, which submits an audit sweep of that policy (read fresh from disk)
unless the previous one of the same policy is still running. A policy with ``remediation.auto``
has its sweep carry the automatic job, which the sweep's finaliser submits once the sweep is
recorded complete (``fleet.jobs.enforce``; docs/enforcement.md).

``fleet.notify.tick``, every minute under the beat too, announces scheduled sweeps that did not
run and delivers the notifications still pending (``fleet.notify``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.schedules import crontab
from redbeat import RedBeatSchedulerEntry

from fleet.core.errors import PolicyLoadError
from fleet.policy.loading import PolicySet, load
from fleet.settings import Settings
from workers.app import app

log = logging.getLogger("fleet.workers")

ENTRY_PREFIX = "fleet-sweep:"


def _crontab(expr: str) -> crontab:
    minute, hour, day_of_month, month, day_of_week = expr.split()
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month,
        day_of_week=day_of_week,
    )


def _load(settings: Settings) -> PolicySet | None:
    if not settings.policy_paths:
        return None
    try:
        return load(settings.policy_paths)
    except PolicyLoadError as exc:
        # Keep the schedules we have: a typo in a policy file must not stop every sweep.
        log.error(
            "policies invalid, schedules unchanged: %s", "; ".join(str(i) for i in exc.issues[:5])
        )
        return None


def wanted_schedules(policy_set: PolicySet) -> dict[str, str]:
    """Entry name -> cron expression, for every policy with a schedule."""
    return {
        ENTRY_PREFIX + p.name: p.spec.remediation.schedule
        for p in policy_set.policies
        if p.spec.remediation.schedule
    }


@app.task(name="fleet.schedules.sync")  # type: ignore[untyped-decorator]
def sync_schedules() -> dict[str, Any]:
    """Make the RedBeat entries match the policies' schedules."""
    settings = Settings()
    policy_set = _load(settings)
    if policy_set is None:
        return {"changed": False}
    wanted = wanted_schedules(policy_set)
    from redbeat.schedulers import get_redis

    client = get_redis(app)
    existing = {
        key.split(":")[-1]: key
        for key in client.scan_iter(match=f"{app.conf.redbeat_key_prefix}:{ENTRY_PREFIX}*")
    }
    changed = 0
    for name, expr in wanted.items():
        policy = name[len(ENTRY_PREFIX) :]
        entry = RedBeatSchedulerEntry(
            name, "fleet.sweep.scheduled", _crontab(expr), args=[policy], app=app
        )
        try:
            current = RedBeatSchedulerEntry.from_key(
                f"{app.conf.redbeat_key_prefix}:{name}", app=app
            )
            same = str(current.schedule) == str(entry.schedule)
        except KeyError:
            same = False
        if not same:
            entry.save()
            changed += 1
    for short, key in existing.items():
        if ENTRY_PREFIX + short not in wanted:
            RedBeatSchedulerEntry.from_key(key, app=app).delete()
            changed += 1
    return {"entries": sorted(wanted), "changed": changed}


@app.task(name="fleet.sweep.scheduled")  # type: ignore[untyped-decorator]
def scheduled_sweep(policy: str) -> str | None:
    """Submit an audit sweep of one policy, unless its previous scheduled sweep still runs."""
    from fleet.jobs.distributed import submit_sweep

    settings = Settings()
    policy_set = _load(settings)
    if policy_set is None or policy not in policy_set.names:
        log.warning("scheduled sweep of %s: policy not found; skipped", policy)
        return None
    one = PolicySet.from_policies(
        [policy_set.by_name(policy)], origins={policy: policy_set.origins[policy]}
    )
    from fleet.record.jobstate import JobState

    jobs = JobState(settings.redis_url)
    # One beat fires each entry once (RedBeat's lock); this guard stops a slow sweep and the
    # next tick from overlapping.
    guard = f"scheduled:{policy}"
    running = jobs.guard(guard)
    if running and jobs.exists(running) and jobs.status(running) in ("queued", "running"):
        log.info("scheduled sweep of %s: %s still running; skipped", policy, running)
        return None
    from fleet.jobs.enforce import after_sweep

    then = after_sweep(policy_set, policy, settings)
    job_id = submit_sweep(settings, one, jobs=jobs, then=then)
    jobs.set_guard(guard, job_id, ttl=24 * 3600)
    return job_id


@app.task(name="fleet.jobs.watchdog")  # type: ignore[untyped-decorator]
def watchdog() -> dict[str, int]:
    """Re-send the missing work of running jobs that stalled (a worker died holding their
    tasks and nobody follows the job from a CLI), every 30 s under the beat."""
    import time

    from fleet.core.errors import JobStateLost
    from fleet.jobs.distributed import redispatch
    from fleet.record.jobstate import JobState

    settings = Settings()
    jobs = JobState(settings.redis_url)
    resent = 0
    for job_id in jobs.jobs(limit=200):
        try:
            if jobs.status(job_id) not in ("queued", "running"):
                continue
            counts = jobs.counts(job_id)
        except JobStateLost:
            continue
        updated = counts.get("updated") or int(jobs.meta(job_id).get("created") or 0)
        if time.time() - updated > settings.stall_seconds:
            resent += max(0, redispatch(jobs, job_id, app))
            jobs.set_counts(job_id, updated=int(time.time()))
    return {"resent": resent}


@app.task(name="fleet.notify.tick")  # type: ignore[untyped-decorator]
def notify_tick() -> dict[str, Any]:
    """Announce scheduled sweeps that did not run, and deliver pending notifications (every
    minute under the beat). Does nothing without ``FLEET_NOTIFY_URLS``."""
    from fleet.notify import announce
    from fleet.record.history import open_history

    settings = Settings()
    if settings.notify_urls is None:
        return {"configured": False}
    with open_history(settings) as history:
        policy_set = _load(settings)
        missed = announce.schedules_missed(settings, history, policy_set) if policy_set else []
        done = announce.deliver_pending(settings, history)
    return {"missed": [e.subject for e in missed], **done.to_json()}

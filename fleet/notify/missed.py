"""Scheduled sweeps that did not run: each policy's ``remediation.schedule`` against the sweeps
the history holds (pure).

A schedule's latest due time at least ``grace`` seconds ago must be followed by a sweep that
judged the policy (a scheduled sweep of it, or any sweep of a set that includes it). A policy
that was never swept is left alone: its schedule has never been seen working, and a fresh
installation would otherwise announce every schedule as missed. The event's id is made of the
policy and the due time, so each missed run is announced once however often the beat looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from croniter import croniter

from fleet.notify.events import SWEEP_MISSED, Event

#: A sweep that started this long before the due time still counts (clocks of the beat and of
#: the worker that records the sweep differ a little).
SLACK = timedelta(seconds=60)


def missed_sweeps(
    schedules: Mapping[str, str],
    started: Mapping[str, Sequence[datetime]],
    *,
    now: datetime,
    grace: float,
) -> list[Event]:
    """One ``fleet.sweep.missed`` per scheduled policy whose last due sweep did not start.

    ``schedules``: policy name -> cron (UTC); ``started``: policy name -> when the sweeps that
    judged it started (aware UTC datetimes)."""
    events = []
    for policy, expr in sorted(schedules.items()):
        runs = started.get(policy) or ()
        if not runs:
            continue
        due: datetime = croniter(expr, now - timedelta(seconds=grace)).get_prev(datetime)
        if any(t >= due - SLACK for t in runs):
            continue
        data = {
            "policy": policy,
            "schedule": expr,
            "dueAt": due.isoformat(),
            "lastSweepAt": max(runs).isoformat(),
            "graceSeconds": grace,
        }
        events.append(Event(SWEEP_MISSED, policy, now.isoformat(), data, due.isoformat()))
    return events

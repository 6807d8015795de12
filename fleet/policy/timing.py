"""The time rules of a policy's remediation: cron expressions, maintenance windows, change
freezes and continuous enforcement (docs/windows.md, docs/enforcement.md; a contract like the
rest of the policy language).

Models only, with the checks one field can make: a cron expression that parses and fires, a
time zone the tz database knows, a window's duration, a freeze that ends after it starts. When a
window is open and when it opens next is ``fleet.plan.windows``'s arithmetic over these.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from fleet.policy.model_base import _Model

_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?")
#: The longest window: a window that never closes is no window at all (leave windows out).
LONGEST_WINDOW = timedelta(days=7)


def check_cron(value: str) -> str:
    """A 5-field cron expression that fires (``0 0 31 2 *`` is well-formed but never does)."""
    from croniter import croniter  # local: keeps the import cost off the hot path

    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid 5-field cron expression")
    # A schedule that never runs is certainly a mistake, so say so now rather than later.
    try:
        croniter(value, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except Exception:  # croniter's CroniterBadDateError and friends
        raise ValueError(f"{value!r} never fires (no such date)") from None
    return value


def check_time_zone(value: str) -> str:
    """An IANA time zone name (``Europe/Berlin``) or ``UTC``."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{value!r} is not a time zone of the tz database (e.g. UTC, Europe/Berlin)"
        ) from None
    return value


def parse_duration(value: str) -> timedelta:
    """``PT4H``, ``PT90M``, ``P1DT2H``: an ISO-8601 duration in days, hours and minutes."""
    match = _DURATION.fullmatch(value)
    if match is None or not any(match.groups()) or value.endswith("T"):
        raise ValueError(f"{value!r} is not an ISO-8601 duration such as PT4H or PT30M")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def _check_duration(value: str) -> str:
    length = parse_duration(value)
    if not timedelta(minutes=1) <= length <= LONGEST_WINDOW:
        raise ValueError(f"a window lasts from one minute to seven days, not {value}")
    return value


Cron = Annotated[str, AfterValidator(check_cron)]
TimeZone = Annotated[str, AfterValidator(check_time_zone)]
WindowDuration = Annotated[str, AfterValidator(_check_duration)]


class MaintenanceWindow(_Model):
    """A recurring window in which remediation may write: it opens when ``cron`` fires (in
    ``timeZone``) and stays open for ``duration``."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=80)] | None = None
    """A name for reports (``nightly``); the cron expression by default."""
    cron: Cron
    """When the window opens: a 5-field cron expression, e.g. ``0 22 * * 1-5``."""
    duration: WindowDuration
    """How long it stays open, ISO-8601: ``PT4H``, ``PT30M``, ``P1D``."""
    time_zone: TimeZone = "UTC"
    """The time zone ``cron`` is read in (IANA name, e.g. ``Europe/Berlin``; DST followed)."""

    @property
    def label(self) -> str:
        return self.name or f"{self.cron} {self.time_zone}"

    @property
    def length(self) -> timedelta:
        return parse_duration(self.duration)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class Freeze(_Model):
    """A change freeze: remediation writes nothing to the policy's clusters from ``start`` to
    ``end``. Dates cover whole days (``end`` included); times are exact."""

    start: date | datetime
    """First day (or moment) of the freeze."""
    end: date | datetime
    """Last day of the freeze (included), or the moment it ends."""
    reason: str = Field(min_length=1)
    """Why (``year-end change freeze``); reports and deferred clusters say it."""
    time_zone: TimeZone = "UTC"
    """The time zone of dates and of times without an offset."""

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a freeze needs a reason")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        begins, ends = self.bounds()
        if ends <= begins:
            raise ValueError("a freeze must end after it starts")
        return self

    def bounds(self) -> tuple[datetime, datetime]:
        """[begins, ends) as aware datetimes."""
        return self._moment(self.start, end=False), self._moment(self.end, end=True)

    def _moment(self, value: datetime | date, *, end: bool) -> datetime:
        zone = ZoneInfo(self.time_zone)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=zone)
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(), zone)


class AutoRemediation(_Model):
    """Continuous enforcement: after each scheduled sweep, a remediation job limited to what
    this says, in the policy's waves, within its failure budget and windows. Updates and
    deletes are off unless said so explicitly."""

    create: bool = True
    """Create what is missing (the extension, flux configurations) on clusters without them."""
    update: bool = False
    """Also fix drift of existing resources (off: a drifted cluster waits for a person)."""
    delete: bool = False
    """Also delete (unmanaged configurations, Flux v1, immutable recreations)."""
    max_clusters_per_run: int = Field(default=50, ge=1, le=10000)
    """Clusters one automatic run writes at most; the rest wait for the next run."""

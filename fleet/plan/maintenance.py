"""An AKS cluster's planned maintenance, from its ``maintenanceConfigurations`` as ARM returns
them: whether a moment is inside the window, and when the window opens next (pure).

fleet honours the configuration AKS uses for cluster upgrades, ``aksManagedAutoUpgradeSchedule``
(``maintenanceWindow``: a daily, weekly, absolute- or relative-monthly schedule, ``startTime``
and ``durationHours`` in ``utcOffset``, from ``startDate``, minus ``notAllowedDates``); without
it, the ``default`` configuration (``timeInWeek`` hour slots in UTC, minus ``notAllowedTime``).
``aksManagedNodeOSUpgradeSchedule`` is about node images and is not read. A configuration fleet
cannot read is never open: writing a cluster outside a window its owners set is the mistake
to avoid, so the cluster waits and the reason says why (docs/windows.md).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

AUTO_UPGRADE = "aksManagedAutoUpgradeSchedule"
DEFAULT = "default"
#: How far ahead the next opening is looked for.
HORIZON_DAYS = 400
_DAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_WEEKS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_EPOCH = date(1970, 1, 5)  # a Monday: interval counts without a startDate start here
Span = tuple[datetime, datetime]


class Unreadable(ValueError):
    """A maintenance configuration whose shape fleet does not understand."""


@dataclass(frozen=True)
class AksMaintenance:
    """The maintenance window of one cluster (one configuration)."""

    name: str
    #: day -> the window's spans that start on that day (``None``: open all day, every day).
    slots: Callable[[date], Iterator[Span]] | None = None
    blocked: tuple[Span, ...] = ()
    error: str | None = None
    #: How many days before a day a span starting then may still be open.
    reach: int = 2
    _cache: dict[date, list[Span]] = field(default_factory=dict, compare=False, repr=False)

    def _spans(self, day: date) -> list[Span]:
        found = self._cache.get(day)
        if found is None:
            found = list(self.slots(day)) if self.slots is not None else []
            self._cache[day] = found
        return found

    def _free(self, at: datetime) -> datetime:
        """``at``, or the end of the blocked span it falls in (repeatedly)."""
        moved = True
        while moved:
            moved = False
            for begins, ends in self.blocked:
                if begins <= at < ends:
                    at, moved = ends, True
        return at

    def is_open(self, at: datetime) -> bool:
        if self.error is not None:
            return False
        if any(b <= at < e for b, e in self.blocked):
            return False
        if self.slots is None:
            return True
        day = at.astimezone(UTC).date()
        return any(
            s <= at < e
            for d in range(-self.reach, 2)
            for s, e in self._spans(day + timedelta(days=d))
        )

    def next_open(self, at: datetime) -> datetime | None:
        """The first moment at or after ``at`` inside the window (None within the horizon)."""
        if self.error is not None:
            return None
        if self.slots is None:
            return self._free(at)
        day = at.astimezone(UTC).date()
        for d in range(-self.reach, HORIZON_DAYS):
            for begins, ends in sorted(self._spans(day + timedelta(days=d))):
                if ends <= at:
                    continue
                candidate = self._free(max(begins, at))
                if candidate < ends:
                    return candidate
        return None


def schedule_of(configurations: Sequence[Mapping[str, Any]]) -> AksMaintenance | None:
    """The window fleet honours among a cluster's configurations (None: the cluster has none)."""
    by_name = {str(c.get("name") or "").lower(): c for c in configurations}
    for name in (AUTO_UPGRADE, DEFAULT):
        config = by_name.get(name.lower())
        if config is None:
            continue
        try:
            return _parse(name, config.get("properties") or {})
        except (Unreadable, KeyError, TypeError, ValueError) as exc:
            return AksMaintenance(
                name, error=f"cannot read maintenance configuration {name}: {exc}"
            )
    return None


def _parse(name: str, props: Mapping[str, Any]) -> AksMaintenance:
    window = props.get("maintenanceWindow")
    if isinstance(window, Mapping):
        return _maintenance_window(name, window)
    if name == AUTO_UPGRADE:
        raise Unreadable("no maintenanceWindow")
    return _time_in_week(name, props)


def _offset(text: str | None) -> timezone:
    if not text:
        return UTC
    sign = -1 if text.startswith("-") else 1
    hours, minutes = text.lstrip("+-").split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def _maintenance_window(name: str, window: Mapping[str, Any]) -> AksMaintenance:
    zone = _offset(window.get("utcOffset"))
    length = timedelta(hours=int(window["durationHours"]))
    hour, minute = (int(p) for p in str(window["startTime"]).split(":"))
    first = date.fromisoformat(window["startDate"]) if window.get("startDate") else None
    anchor = first or _EPOCH
    schedule = window["schedule"]
    matches = _matcher(schedule, anchor)
    blocked = tuple(
        (
            datetime.combine(date.fromisoformat(span["start"]), time(), zone),
            datetime.combine(date.fromisoformat(span["end"]) + timedelta(days=1), time(), zone),
        )
        for span in window.get("notAllowedDates") or ()
    )

    def slots(day: date) -> Iterator[Span]:
        if (first is None or day >= first) and matches(day):
            begins = datetime.combine(day, time(hour, minute), zone)
            yield begins, begins + length

    return AksMaintenance(name, slots, blocked, reach=2)


def _matcher(schedule: Mapping[str, Any], anchor: date) -> Callable[[date], bool]:
    def months(day: date) -> int:
        return (day.year - anchor.year) * 12 + day.month - anchor.month

    if schedule.get("daily"):
        every = int(schedule["daily"]["intervalDays"])
        return lambda day: (day - anchor).days % every == 0
    if schedule.get("weekly"):
        weekly = schedule["weekly"]
        every, weekday = int(weekly["intervalWeeks"]), _DAYS[str(weekly["dayOfWeek"]).lower()]
        monday = anchor - timedelta(days=anchor.weekday())
        return lambda day: day.weekday() == weekday and ((day - monday).days // 7) % every == 0
    if schedule.get("absoluteMonthly"):
        monthly = schedule["absoluteMonthly"]
        every, dom = int(monthly["intervalMonths"]), int(monthly["dayOfMonth"])
        return lambda day: day.day == dom and months(day) % every == 0
    if schedule.get("relativeMonthly"):
        monthly = schedule["relativeMonthly"]
        every = int(monthly["intervalMonths"])
        weekday = _DAYS[str(monthly["dayOfWeek"]).lower()]
        week = _WEEKS[str(monthly["weekIndex"]).lower()]

        def relative(day: date) -> bool:
            if day.weekday() != weekday or months(day) % every:
                return False
            if week == -1:
                return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
            return (day.day - 1) // 7 + 1 == week

        return relative
    raise Unreadable("the schedule is none of daily, weekly, absoluteMonthly, relativeMonthly")


def _time_in_week(name: str, props: Mapping[str, Any]) -> AksMaintenance:
    hours: dict[int, list[int]] = {}
    for entry in props.get("timeInWeek") or ():
        day = _DAYS[str(entry["day"]).lower()]
        hours.setdefault(day, []).extend(int(h) for h in entry.get("hourSlots") or ())
    blocked = tuple(
        (_moment(span["start"]), _moment(span["end"])) for span in props.get("notAllowedTime") or ()
    )
    if not hours:
        return AksMaintenance(name, None, blocked)

    def slots(day: date) -> Iterator[Span]:
        for hour in sorted(set(hours.get(day.weekday(), ()))):
            begins = datetime.combine(day, time(hour), UTC)
            yield begins, begins + timedelta(hours=1)

    return AksMaintenance(name, slots, blocked, reach=1)


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

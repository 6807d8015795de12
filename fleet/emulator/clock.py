"""Emulated time: the clock the emulator's timestamps come from, and work due at a moment.

``Clock`` is real UTC plus an offset that ``/_emulator/clock`` moves (only forward), so a test
can let 48 hours pass instantly. ``Schedule`` holds the work due at an emulated moment
(operations that end by time, flux configurations that finish reconciling); the LRO machine
(lro.py) settles what is due lazily, at the start of each request, instead of running timers.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any


def iso(moment: datetime) -> str:
    """ARM's timestamp format (UTC, 'Z')."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    """An ISO timestamp (``Z`` or an offset; naive means UTC)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Clock:
    """Emulated UTC time: the real clock plus an offset that only moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def timestamp(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulated clock only moves forward")
        self.offset += seconds

    def set(self, moment: datetime) -> None:
        target = moment.timestamp() - datetime.now(UTC).timestamp()
        if target < self.offset:
            raise ValueError("the emulated clock only moves forward")
        self.offset = target

    def to_json(self) -> dict[str, Any]:
        return {"now": iso(self.now()), "offsetSeconds": self.offset}


class Schedule:
    """Work due at an emulated moment: ``(kind, ref)`` entries in a heap by due time.

    Entries are never removed early: whoever settles one checks that it still applies (the
    operation is not already over, the configuration was not written again), which is cheaper
    than finding and deleting it when a newer write supersedes it.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Any]] = []
        # Ties on the due time pop in push order, and the refs themselves are never compared.
        self._seq = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, when: datetime, kind: str, ref: Any) -> None:
        heapq.heappush(self._heap, (when.timestamp(), next(self._seq), kind, ref))

    def pop_due(self, now_ts: float) -> Iterator[tuple[str, Any]]:
        """The entries due at ``now_ts``, earliest first, including any pushed meanwhile."""
        while self._heap and self._heap[0][0] <= now_ts:
            _, _, kind, ref = heapq.heappop(self._heap)
            yield kind, ref

    def pending(self) -> Iterator[tuple[datetime, str, Any]]:
        """Every entry not yet settled, earliest first (for the dump of in-flight work)."""
        for when, _, kind, ref in sorted(self._heap):
            yield datetime.fromtimestamp(when, UTC), kind, ref

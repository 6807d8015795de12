"""The Resource Graph quota: pacing queries so that the principal's window is never overspent.

Resource Graph allows a principal about 15 queries per 5 s (a fixed window) and says on every
answer how many are left (``x-ms-user-quota-remaining``) and when the window turns
(``x-ms-user-quota-resets-after``). ``QuotaPacer`` reads both and waits for the window to
reset before a query would be refused; a 429 (another client spending the same quota) is
waited out as its ``Retry-After`` says. Shared by every thread of one inventory.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping


def parse_duration(value: str) -> float | None:
    """Seconds of a ``[d.]hh:mm:ss[.fff]`` duration (``x-ms-user-quota-resets-after``)."""
    try:
        days = 0
        head, _, rest = value.strip().partition(":")
        if "." in head:
            d, head = head.split(".", 1)
            days = int(d)
        minutes, _, seconds = rest.partition(":")
        return days * 86400 + int(head) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


class QuotaPacer:
    """Keeps Resource Graph queries inside the principal's quota (a fixed window).

    The window's reset time is known only to the second (``resets-after`` is ``hh:mm:ss``);
    each answer of a window bounds it to ``(sent + after - 1, received + after]``. Intersecting
    the bounds of every answer of the window narrows that to well under a second, so the pacer
    waits for the earliest moment the quota is surely back instead of up to a second more.
    If the server still answers 429 (its seconds were rounded the other way, or another client
    spent the quota) the 429's ``Retry-After`` is honoured and a small margin is added to the
    waits that follow.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._reset_at = math.inf
        self._margin = 0.02
        self.waited = 0.0
        self.waits = 0
        self.throttled = 0

    def before(self) -> None:
        """Wait until a query may be sent."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self._remaining is not None and self._remaining <= 0:
                wait = max(0.0, self._reset_at + self._margin - now)
        if wait > 0:
            self._sleep(wait)
            with self._lock:
                self.waited += wait
                self.waits += 1
        with self._lock:
            if self._remaining is not None and self._remaining <= 0:
                # The window has turned: how much is left is unknown until the next answer.
                self._remaining = None
                self._reset_at = math.inf
            elif self._remaining is not None:
                self._remaining -= 1  # reserve it: a concurrent caller must not reuse it

    def after(self, sent: float, received: float, headers: Mapping[str, str]) -> None:
        """Account for an answer (any status) and its quota headers."""
        remaining = headers.get("x-ms-user-quota-remaining")
        after = parse_duration(headers.get("x-ms-user-quota-resets-after") or "")
        if remaining is None or after is None:
            return
        try:
            left = int(remaining)
        except ValueError:
            return
        with self._lock:
            new_window = (
                self._remaining is None or left > self._remaining + 1 or received > self._reset_at
            )
            bound = received + after
            if new_window:
                self._reset_at = bound
            else:
                self._reset_at = min(self._reset_at, bound)
            # Never earlier than what this answer allows (sent + after - 1): a bound from an
            # earlier window that slipped through would make the pacer send too soon.
            self._reset_at = max(self._reset_at, sent + after - 1.0)
            self._remaining = left

    def refused(self, retry_after: float) -> None:
        """A 429: the quota is spent until ``retry_after`` from now."""
        with self._lock:
            self.throttled += 1
            self._remaining = 0
            self._reset_at = max(
                self._clock() + retry_after, self._reset_at if self._reset_at != math.inf else 0.0
            )
            # The estimate was early, or someone else spends this principal's quota: either
            # way, from now on wait a little longer past each reset.
            self._margin = min(1.0, self._margin + 0.25)

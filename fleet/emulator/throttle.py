"""Throttling like ARM and Resource Graph.

ARM (since 2024) throttles with token buckets per region, subscription, principal and operation
class: reads 250 burst refilled at 25/s, writes and deletes 200 burst at 10/s
(docs/contracts.md, Domain facts; Microsoft's "Understand how Azure Resource Manager
throttles requests"). Every response carries the remaining count in
``x-ms-ratelimit-remaining-subscription-{reads|writes|deletes}`` (``-tenant-`` for tenant-level
calls); an empty bucket answers 429 with ``Retry-After`` in whole seconds. ``scale`` multiplies
burst and rate so tests can hit the limits in a fraction of a second.

Resource Graph has its own quota: a number of queries per window per user (15 per 5 s), told in
``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after`` (``hh:mm:ss``).

Both use the real monotonic clock, not the emulated one: a client honouring ``Retry-After``
waits in real time, and the buckets must refill in the same time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

OpClass = Literal["reads", "writes", "deletes"]
Mode = Literal["arm", "off"]

#: (burst, refill per second) per operation class.
ARM_LIMITS: dict[str, tuple[float, float]] = {
    "reads": (250.0, 25.0),
    "writes": (200.0, 10.0),
    "deletes": (200.0, 10.0),
}


class TokenBucket:
    """A bucket of ``capacity`` tokens refilled continuously at ``rate`` per second."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp = now

    def take(self, now: float) -> tuple[bool, int, int]:
        """Try to take one token: (allowed, remaining whole tokens, retry-after seconds)."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True, int(self.tokens), 0
        wait = (1.0 - self.tokens) / self.rate if self.rate > 0 else 3600.0
        return False, 0, max(1, math.ceil(wait))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one throttling check, and the headers to send with the response."""

    allowed: bool
    headers: tuple[tuple[str, str], ...]
    retry_after: int = 0


_ALLOW = Verdict(True, ())


class ArmThrottle:
    """Token buckets per (subscription or tenant, principal, operation class)."""

    def __init__(
        self,
        mode: Mode = "arm",
        scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("arm", "off"):
            raise ValueError("throttle mode must be 'arm' or 'off'")
        if scale <= 0:
            raise ValueError("throttle scale must be > 0")
        self.mode = mode
        self.scale = scale
        self._clock = clock
        self._buckets: dict[tuple[str | None, str, str], TokenBucket] = {}
        self._limits = {
            op: (max(1.0, round(burst * scale)), rate * scale)
            for op, (burst, rate) in ARM_LIMITS.items()
        }

    def limits(self, op: OpClass) -> tuple[float, float]:
        """(burst, refill per second) of an operation class after scaling."""
        return self._limits[op]

    def check(self, subscription: str | None, principal: str, op: OpClass) -> Verdict:
        """Take a token for one request. ``subscription`` None means a tenant-level call."""
        if self.mode == "off":
            return _ALLOW
        key = (subscription.lower() if subscription else None, principal, op)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            burst, rate = self._limits[op]
            bucket = self._buckets[key] = TokenBucket(burst, rate, now)
        allowed, remaining, retry_after = bucket.take(now)
        scope = "subscription" if subscription else "tenant"
        headers = ((f"x-ms-ratelimit-remaining-{scope}-{op}", str(remaining)),)
        return Verdict(allowed, headers, retry_after)

    def reset(self) -> None:
        self._buckets.clear()


def _hms(seconds: float) -> str:
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class GraphQuota:
    """Resource Graph's per-user quota: ``limit`` queries per fixed ``window`` seconds."""

    def __init__(
        self,
        limit: int = 15,
        window: float = 5.0,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("graph quota needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.enabled = enabled
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def check(self, principal: str) -> Verdict:
        """Count one query for ``principal``."""
        now = self._clock()
        start, used = self._windows.get(principal, (now, 0))
        if now - start >= self.window:
            start, used = now, 0
        resets_after = self.window - (now - start)
        if self.enabled and used >= self.limit:
            headers = (
                ("x-ms-user-quota-remaining", "0"),
                ("x-ms-user-quota-resets-after", _hms(resets_after)),
            )
            return Verdict(False, headers, max(1, math.ceil(resets_after)))
        used += 1
        self._windows[principal] = (start, used)
        headers = (
            ("x-ms-user-quota-remaining", str(max(0, self.limit - used))),
            ("x-ms-user-quota-resets-after", _hms(resets_after)),
        )
        return Verdict(True, headers)

    def reset(self) -> None:
        self._windows.clear()

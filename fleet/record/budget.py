"""One ARM budget for every worker: a Redis-backed limiter (distributed mode).

Implements the ``fleet.azure.ratelimit.Limiter`` protocol with the ``limits`` library's
moving-window strategy on Redis: a window of ``burst`` requests per ``burst / rate`` seconds
never admits more than ARM's token bucket (``burst`` tokens, ``rate`` per second) does over
any interval, and settles at the same ``rate`` — a safe stand-in that every worker on every
machine shares. Keys are per (subscription, principal, operation class), as ARM's buckets are.

A 429 seen by any worker sets a shared pause key (``PX`` = Retry-After) that every worker
checks before sending, so a throttling storm stops everywhere at once.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Literal

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

OpClass = Literal["reads", "writes", "deletes"]


class RedisLimiter:
    """A limiter shared through Redis by every process using the same ``prefix``."""

    def __init__(
        self,
        redis_url: str,
        *,
        budgets: dict[str, tuple[float, float]],
        principal: str,
        prefix: str = "fleet:arm",
    ) -> None:
        """``budgets`` maps an operation class to (burst, rate per second)."""
        self._storage = RedisStorage(redis_url)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._redis = redis.Redis.from_url(redis_url)
        self._principal = principal
        self._prefix = prefix
        self._items = {}
        for op, (burst, rate) in budgets.items():
            amount = max(1, int(burst))
            window = max(1, round(amount / rate))
            # RateLimitItemPerSecond(amount, multiples=window): `amount` per `window` seconds.
            self._items[op] = RateLimitItemPerSecond(amount, window)
        self.waited_seconds = 0.0

    def _pause_key(self, subscription: str, op: OpClass) -> str:
        return f"{self._prefix}:pause:{subscription.lower()}:{self._principal}:{op}"

    def acquire(self, subscription: str, op: OpClass, *, deadline: float | None = None) -> float:
        item = self._items[op]
        ids = (self._prefix, subscription.lower(), self._principal, op)
        waited = 0.0
        while True:
            pause_ms = self._redis.pttl(self._pause_key(subscription, op))
            if isinstance(pause_ms, int) and pause_ms > 0:
                wait = pause_ms / 1000.0
            elif self._limiter.hit(item, *ids):
                self.waited_seconds += waited
                return waited
            else:
                stats = self._limiter.get_window_stats(item, *ids)
                # Jitter spreads the wake-ups of many waiting threads over the freed slots.
                wait = max(0.01, stats.reset_time - time.time()) + random.uniform(0, 0.05)
            if deadline is not None and time.monotonic() + wait > deadline:
                raise TimeoutError(f"no ARM {op} budget for {subscription} before the deadline")
            time.sleep(wait)
            waited += wait

    def pause(self, subscription: str, op: OpClass, seconds: float) -> None:
        ms = max(1, int(seconds * 1000))
        key = self._pause_key(subscription, op)
        # Keep the longer of an existing pause and this one.
        current = self._redis.pttl(key)
        if not isinstance(current, int) or current < ms:
            self._redis.set(key, b"1", px=ms)
        log.info("ARM throttled %s %s: all workers pause %.1fs", subscription, op, seconds)

    def reset(self) -> None:
        """Forget every window and pause under this prefix (tests and benchmarks)."""
        for key in self._redis.scan_iter(match=f"*{self._prefix}*"):
            self._redis.delete(key)

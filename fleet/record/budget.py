"""One ARM budget for every worker: a Redis-backed token bucket (distributed mode).

Implements the ``fleet.azure.ratelimit.Limiter`` protocol with ARM's own model: a bucket of
``burst`` tokens that refills at ``rate`` per second, starting full, one token per request
(reads 250 / 25 per s, writes and deletes 200 / 10 per s). Keys are per (subscription,
principal, operation class), as ARM's buckets are. The bucket is one Redis hash (``tokens``,
``ms``: when it was last refilled) updated by one Lua script per attempt, so every worker on
every machine spends the same bucket atomically, and the time is Redis's own (``TIME``): the
workers' clocks need not agree.

A moving window of ``burst`` requests per ``burst / rate`` seconds (what this limiter was before)
never admits more than the bucket, but it admits much less once the burst is spent: the burst
comes back only when the window has moved past it, so a sweep paced itself at ``burst`` requests
every 10 s from the first request instead of spending 250 at once and then 25 each second.

A 429 seen by any worker sets a shared pause key (``PX`` = Retry-After) that the script checks
before it hands out a token, and empties the bucket (ARM just said it is empty), so a throttling
storm stops everywhere at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Literal

import redis

log = logging.getLogger(__name__)

OpClass = Literal["reads", "writes", "deletes"]

#: KEYS: bucket hash, pause key. ARGV: burst, rate per second, now in ms (0: Redis's TIME).
#: Returns 0 when a token was taken, else the milliseconds to wait before asking again.
_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  return paused
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate / 1000)
  last = now
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ms', tostring(last))
-- A bucket left alone refills to full: once it would be full, the key may go (absent = full).
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return wait
"""

#: KEYS: bucket hash. ARGV: now in ms (0: Redis's TIME). Empties the bucket.
_EMPTY = """
local now = tonumber(ARGV[1])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('HSET', KEYS[1], 'tokens', '0', 'ms', tostring(now))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 0
"""


class RedisLimiter:
    """A limiter shared through Redis by every process using the same ``prefix``.

    ``clock`` (seconds) and ``sleep`` are for tests: with a clock the script is given its time
    instead of reading Redis's, so a fake clock makes every wait exact and instant."""

    def __init__(
        self,
        redis_url: str,
        *,
        budgets: dict[str, tuple[float, float]],
        principal: str,
        prefix: str = "fleet:arm",
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``budgets`` maps an operation class to (burst, rate per second)."""
        self._redis = redis.Redis.from_url(redis_url)
        self._take = self._redis.register_script(_TAKE)
        self._empty = self._redis.register_script(_EMPTY)
        self._principal = principal
        self._prefix = prefix
        self._clock = clock
        self._sleep = sleep
        self._budgets = {op: (max(1.0, float(b)), float(r)) for op, (b, r) in budgets.items()}
        self.waited_seconds = 0.0
        #: Scripts sent to Redis (one per attempt to take a token): the benchmarks' Redis load.
        self.calls = 0

    def _keys(self, subscription: str, op: OpClass) -> list[str]:
        ids = f"{subscription.lower()}:{self._principal}:{op}"
        return [f"{self._prefix}:bucket:{ids}", f"{self._prefix}:pause:{ids}"]

    def _now_ms(self) -> int:
        return 0 if self._clock is None else max(1, round(self._clock() * 1000))

    def acquire(self, subscription: str, op: OpClass, *, deadline: float | None = None) -> float:
        burst, rate = self._budgets[op]
        keys = self._keys(subscription, op)
        waited = 0.0
        while True:
            self.calls += 1
            wait_ms = int(self._take(keys=keys, args=[burst, rate, self._now_ms()]))
            if wait_ms <= 0:
                self.waited_seconds += waited
                return waited
            wait = wait_ms / 1000.0
            if self._clock is None:
                # Jitter spreads the wake-ups of many waiting threads over the refilled tokens.
                wait += random.uniform(0, 0.01)
            if deadline is not None and time.monotonic() + wait > deadline:
                raise TimeoutError(f"no ARM {op} budget for {subscription} before the deadline")
            self._sleep(wait)
            waited += wait

    def pause(self, subscription: str, op: OpClass, seconds: float) -> None:
        ms = max(1, int(seconds * 1000))
        bucket, key = self._keys(subscription, op)
        burst, rate = self._budgets[op]
        # Keep the longer of an existing pause and this one.
        current = self._redis.pttl(key)
        if not isinstance(current, int) or current < ms:
            self._redis.set(key, b"1", px=ms)
        # What ARM just told us outranks our count: the bucket is empty.
        self._empty(keys=[bucket], args=[self._now_ms(), int(burst * 1000 / rate) + 1000])
        log.info("ARM throttled %s %s: all workers pause %.1fs", subscription, op, seconds)

    def reset(self) -> None:
        """Forget every bucket and pause under this prefix (tests and benchmarks)."""
        for key in self._redis.scan_iter(match=f"{self._prefix}:*"):
            self._redis.delete(key)

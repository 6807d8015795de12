"""ARM's request budget, kept by fleet instead of discovered through 429s.

ARM throttles per (region, subscription, principal, operation class) with token buckets:
reads 250 burst / 25 per s, writes and deletes 200 / 10 per s. fleet spends the same budget on
its side: every HTTP attempt (paging and LRO polls included) takes a token from the bucket of
its subscription and class before it is sent, via ``BudgetPolicy``, an azure-core per-retry
policy. A 429 still happens when someone else spends the same principal's budget; then the
whole bucket pauses for the response's ``Retry-After``, so one throttled request stops its
siblings instead of letting them collect 429s of their own.

``TokenBucketLimiter`` is the in-process limiter of the local engine. The Celery engine plugs a
Redis-backed limiter with the same ``Limiter`` protocol into the same policy, so every worker
shares one budget.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

OpClass = Literal["reads", "writes", "deletes"]

_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)
#: Bucket for requests that name no subscription (tenant-level: /subscriptions, Resource Graph).
TENANT = "tenant"


def op_class(method: str) -> OpClass:
    """ARM counts GET/HEAD as reads, DELETE as deletes, everything else as writes."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    if method == "DELETE":
        return "deletes"
    return "writes"


def subscription_of(url: str) -> str:
    """The subscription a request URL is charged to (``tenant`` when it names none)."""
    match = _SUBSCRIPTION.search(url)
    return match.group(1).lower() if match else TENANT


@dataclass(frozen=True, slots=True)
class Budget:
    """Burst and refill rate of one bucket."""

    burst: float
    rate: float


class Limiter(Protocol):
    """What ``BudgetPolicy`` needs from a limiter (in-process or Redis-backed)."""

    def acquire(self, subscription: str, op: OpClass, *, deadline: float | None = None) -> float:
        """Block until a token is available; return the seconds waited."""

    def pause(self, subscription: str, op: OpClass, seconds: float) -> None:
        """Stop handing out tokens of this bucket for ``seconds`` (a 429's Retry-After)."""


@dataclass
class _Bucket:
    budget: Budget
    tokens: float
    updated: float
    paused_until: float = 0.0


@dataclass
class LimiterStats:
    """Counters for the report and the benchmarks (read under the limiter's lock)."""

    acquired: dict[OpClass, int] = field(
        default_factory=lambda: {"reads": 0, "writes": 0, "deletes": 0}
    )
    waited_seconds: float = 0.0
    pauses: int = 0
    throttled: int = 0


class TokenBucketLimiter:
    """Thread-safe token buckets keyed by (subscription, operation class).

    ``budgets`` gives burst/rate per class. The bucket starts full, as ARM's does, so a small
    sweep never waits; a large one settles at the refill rate.
    """

    def __init__(
        self,
        budgets: dict[OpClass, Budget],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._budgets = budgets
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, OpClass], _Bucket] = {}
        self.stats = LimiterStats()

    def _bucket(self, key: tuple[str, OpClass], now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            budget = self._budgets[key[1]]
            bucket = self._buckets[key] = _Bucket(budget, budget.burst, now)
        return bucket

    def acquire(self, subscription: str, op: OpClass, *, deadline: float | None = None) -> float:
        key = (subscription.lower(), op)
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                bucket = self._bucket(key, now)
                # Refill for the time elapsed, never above the burst.
                bucket.tokens = min(
                    bucket.budget.burst, bucket.tokens + (now - bucket.updated) * bucket.budget.rate
                )
                bucket.updated = now
                if now >= bucket.paused_until and bucket.tokens >= 1.0:
                    bucket.tokens -= 1.0
                    self.stats.acquired[op] += 1
                    self.stats.waited_seconds += waited
                    return waited
                if now < bucket.paused_until:
                    wait = bucket.paused_until - now
                else:
                    wait = (1.0 - bucket.tokens) / bucket.budget.rate
            if deadline is not None and time.monotonic() + wait > deadline:
                raise TimeoutError(f"no ARM {op} budget for {subscription} before the deadline")
            self._sleep(wait)
            waited += wait

    def pause(self, subscription: str, op: OpClass, seconds: float) -> None:
        key = (subscription.lower(), op)
        with self._lock:
            now = self._clock()
            bucket = self._bucket(key, now)
            bucket.paused_until = max(bucket.paused_until, now + seconds)
            # What ARM just told us outranks our estimate: the bucket is empty.
            bucket.tokens = 0.0
            bucket.updated = now
            self.stats.pauses += 1
            self.stats.throttled += 1


def arm_budgets(
    *,
    read_rate: float,
    read_burst: int,
    write_rate: float,
    write_burst: int,
    delete_rate: float,
    delete_burst: int,
    fraction: float = 1.0,
) -> dict[OpClass, Budget]:
    """Budgets per operation class, scaled by the share of ARM's budget fleet may use."""
    return {
        "reads": Budget(max(1.0, read_burst * fraction), read_rate * fraction),
        "writes": Budget(max(1.0, write_burst * fraction), write_rate * fraction),
        "deletes": Budget(max(1.0, delete_burst * fraction), delete_rate * fraction),
    }


def retry_after_seconds(headers: object, default: float = 1.0) -> float:
    """Seconds from ``Retry-After`` (or ``retry-after-ms``/``x-ms-retry-after-ms``) headers."""
    get = getattr(headers, "get", None)
    if get is None:
        return default
    for name, scale in (
        ("retry-after-ms", 0.001),
        ("x-ms-retry-after-ms", 0.001),
        ("retry-after", 1.0),
    ):
        value = get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP-date: rare from ARM; fall through to the default
    return default


class BudgetPolicy(HTTPPolicy):  # type: ignore[type-arg]
    """azure-core per-retry policy: take a token before each attempt, pause the bucket on 429."""

    def __init__(self, limiter: Limiter, *, on_response: Callable[[str, int], None] | None = None):
        super().__init__()
        self._limiter = limiter
        self._on_response = on_response

    def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
        http = request.http_request
        subscription = subscription_of(http.url)
        op = op_class(http.method)
        self._limiter.acquire(subscription, op)
        response = self.next.send(request)
        status = response.http_response.status_code
        if status == 429:
            self._limiter.pause(
                subscription, op, retry_after_seconds(response.http_response.headers)
            )
        if self._on_response is not None:
            self._on_response(op, status)
        return response

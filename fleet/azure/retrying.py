"""Retries of whole ARM operations, above the SDK's own (deliberately few) retries.

The one way fleet retries a read: ARM calls (``fleet.azure.inventory``, ``fleet.azure.observe``)
and Resource Graph pages (``fleet.azure.graph_pages``) all go through ``call``.

The SDK retries one HTTP request a couple of times; when that is not enough (a throttling
storm, a 503 burst, a connection reset mid-page), fleet retries the whole operation — an ARM
page walk is restarted from the first page, so no partial list is ever used; a Resource Graph
page is asked again with its own ``$skipToken`` — with jittered exponential backoff that
honours ARM's ``Retry-After``. A non-retryable failure (403, 404, 400) or the last attempt
raises ``ArmCallFailed`` carrying the translated failure.

Throttling is not failure: a 429 (ARM's bucket is empty, ``Retry-After`` says when to come
back; ``BudgetPolicy`` has paused every request of that bucket meanwhile) does not use up an
attempt. The call keeps waiting as told for up to ``THROTTLE_PATIENCE`` seconds from its first
429, so a throttling storm slows a sweep down instead of costing it clusters. A caller that
paces its own requests (Resource Graph's quota) passes ``on_throttle``: the call then hands it
the wait instead of sleeping, and the caller's pacing waits before the next attempt.

A 401 is tried once more at once, outside the attempt count: azure-core drops its cached token
when ARM answers 401, so the next request carries a fresh one from the credential (a token
that expired or was revoked mid-sweep). A second 401 is final.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from fleet.azure.errors import describe
from fleet.core.errors import ArmCallFailed
from fleet.core.failures import ArmFailure

T = TypeVar("T")

#: Seconds one call keeps retrying 429s without counting them as attempts.
THROTTLE_PATIENCE = 300.0

#: Exceptions that are bugs, never ARM weather: let them through untouched.
_NEVER_RETRY = (KeyboardInterrupt, SystemExit, MemoryError, AssertionError)


def is_auth_expiry(failure: ArmFailure) -> bool:
    """A 401: the token was refused (expired, revoked); a fresh one may be accepted."""
    return failure.status == 401


def backoff(
    attempt: int, *, base: float = 0.5, cap: float = 20.0, rng: random.Random | None = None
) -> float:
    """Full-jitter exponential backoff for attempt 1, 2, ... (AWS architecture blog style)."""
    r = rng or random
    return r.uniform(0, min(cap, base * (2 ** (attempt - 1))))


def call(
    fn: Callable[[], T],
    *,
    attempts: int,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_throttle: Callable[[float], None] | None = None,
) -> T:
    """Run ``fn`` until it succeeds, fails for good, or ``attempts`` are used up.

    ``on_throttle(seconds)`` replaces the sleep after a 429 (see the module docstring).
    """
    attempt = 0
    refreshed = False
    throttled_since: float | None = None
    while True:
        attempt += 1
        try:
            return fn()
        except _NEVER_RETRY:
            raise
        except Exception as exc:
            failure = describe(exc)
            if is_auth_expiry(failure) and not refreshed:
                refreshed = True
                attempt -= 1
                continue
            if failure.status == 429 and not (should_stop and should_stop()):
                now = clock()
                throttled_since = now if throttled_since is None else throttled_since
                if now - throttled_since < THROTTLE_PATIENCE:
                    attempt -= 1  # waiting as ARM asks is not a failed attempt
                    wait = failure.retry_after if failure.retry_after is not None else backoff(1)
                    (on_throttle or sleep)(wait)
                    continue
            if not failure.retryable or attempt >= attempts or (should_stop and should_stop()):
                raise ArmCallFailed(what, failure, attempt) from exc
            delay = backoff(attempt)
            if failure.retry_after is not None:
                delay = max(delay, failure.retry_after)
            sleep(delay)

"""Retries of whole ARM operations, above the SDK's own (deliberately few) retries.

The SDK retries one HTTP request a couple of times; when that is not enough (a throttling
storm, a 503 burst, a connection reset mid-page), fleet retries the whole operation — a page
walk is restarted from the first page, so no partial list is ever used — with jittered
exponential backoff that honours ARM's ``Retry-After``. A non-retryable failure (403, 404,
400) or the last attempt raises ``ArmCallFailed`` carrying the translated failure.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from fleet.azure.errors import ArmFailure, describe

T = TypeVar("T")

#: Exceptions that are bugs, never ARM weather: let them through untouched.
_NEVER_RETRY = (KeyboardInterrupt, SystemExit, MemoryError, AssertionError)


class ArmCallFailed(RuntimeError):
    """An ARM operation failed for good; ``failure`` says how."""

    def __init__(self, what: str, failure: ArmFailure, attempts: int) -> None:
        super().__init__(
            f"{what}: {failure} (after {attempts} attempt{'s' if attempts > 1 else ''})"
        )
        self.what = what
        self.failure = failure
        self.attempts = attempts


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
) -> T:
    """Run ``fn`` until it succeeds, fails for good, or ``attempts`` are used up."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except _NEVER_RETRY:
            raise
        except Exception as exc:
            failure = describe(exc)
            if not failure.retryable or attempt >= attempts or (should_stop and should_stop()):
                raise ArmCallFailed(what, failure, attempt) from exc
            delay = backoff(attempt)
            if failure.retry_after is not None:
                delay = max(delay, failure.retry_after)
            sleep(delay)

"""The in-process ARM budget: burst, refill, pauses on 429, classes and subscriptions apart."""

from __future__ import annotations

import threading

import pytest

from fleet.azure.ratelimit import (
    Budget,
    TokenBucketLimiter,
    arm_budgets,
    op_class,
    retry_after_seconds,
    subscription_of,
)


class FakeClock:
    """A clock that only moves when the limiter sleeps, so waits are exact and instant."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(clock: FakeClock, burst: float = 5, rate: float = 2) -> TokenBucketLimiter:
    budget = Budget(burst, rate)
    return TokenBucketLimiter(
        {"reads": budget, "writes": Budget(2, 1), "deletes": Budget(2, 1)},
        clock=clock.time,
        sleep=clock.sleep,
    )


def test_burst_is_free_then_requests_wait_for_the_refill_rate() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(5):
        assert lim.acquire("sub", "reads") == 0.0
    start = clock.now
    for _ in range(4):
        lim.acquire("sub", "reads")
    # 4 more tokens at 2/s take 2 s of (fake) time
    assert clock.now - start == pytest.approx(2.0)


def test_buckets_are_per_subscription_and_per_class() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(5):
        lim.acquire("a", "reads")
    assert lim.acquire("b", "reads") == 0.0  # another subscription has its own bucket
    assert lim.acquire("a", "writes") == 0.0  # writes are counted apart from reads
    assert lim.acquire("A", "reads") > 0  # subscription ids are case-insensitive


def test_a_429_pauses_the_whole_bucket_for_retry_after() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    lim.pause("sub", "reads", 3.0)
    start = clock.now
    lim.acquire("sub", "reads")
    assert clock.now - start >= 3.0
    assert lim.stats.throttled == 1


def test_threads_never_exceed_the_budget() -> None:
    """Real clock: 20 threads, burst 10, 50/s: 40 tokens in no less than 0.6 s."""
    import time

    lim = TokenBucketLimiter(
        {"reads": Budget(10, 50), "writes": Budget(1, 1), "deletes": Budget(1, 1)}
    )
    start = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [lim.acquire("s", "reads") for _ in range(2)])
        for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert lim.stats.acquired["reads"] == 40
    assert elapsed >= (40 - 10) / 50 * 0.95


def test_deadline_raises_instead_of_waiting_forever() -> None:
    clock = FakeClock()
    lim = limiter(clock, burst=1, rate=0.001)
    lim.acquire("s", "reads")
    import time

    with pytest.raises(TimeoutError):
        lim.acquire("s", "reads", deadline=time.monotonic() + 0.01)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("GET", "reads"),
        ("head", "reads"),
        ("PUT", "writes"),
        ("PATCH", "writes"),
        ("POST", "writes"),
        ("DELETE", "deletes"),
    ],
)
def test_operation_classes_follow_arm(method: str, expected: str) -> None:
    assert op_class(method) == expected


def test_subscription_of_urls() -> None:
    assert subscription_of("https://x/subscriptions/ABC/resourceGroups/rg?api-version=1") == "abc"
    assert subscription_of("https://x/providers/Microsoft.ResourceGraph/resources") == "tenant"


def test_retry_after_headers() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({}, default=2.0) == 2.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, default=1.0) == 1.0


def test_budget_fraction_scales_every_bucket() -> None:
    b = arm_budgets(
        read_rate=25,
        read_burst=250,
        write_rate=10,
        write_burst=200,
        delete_rate=10,
        delete_burst=200,
        fraction=0.5,
    )
    assert b["reads"] == Budget(125, 12.5)
    assert b["writes"] == Budget(100, 5)

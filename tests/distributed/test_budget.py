"""The Redis-backed ARM budget: ARM's token bucket (burst, then the refill rate), kept in one
Redis hash that several processes spend together."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from fleet.record.budget import RedisLimiter
from tests.distributed.conftest import RedisServer


class FakeClock:
    """Time that moves only when the limiter sleeps: waits are exact and instant."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _fake(url: str, clock: FakeClock, prefix: str, **budgets: tuple[float, float]) -> RedisLimiter:
    limiter = RedisLimiter(
        url,
        budgets=budgets or {"reads": (250, 25.0), "writes": (200, 10.0)},
        principal="p",
        prefix=prefix,
        clock=clock.time,
        sleep=clock.sleep,
    )
    limiter.reset()
    return limiter


def test_the_burst_is_spent_at_once_then_tokens_come_at_the_rate(
    redis_server: RedisServer,
) -> None:
    """ARM's read bucket: 250 requests without a wait, then one every 40 ms."""
    clock = FakeClock()
    lim = _fake(redis_server.url, clock, "fleet:tb1")
    for _ in range(250):
        assert lim.acquire("sub", "reads") == 0.0
    assert clock.slept == []
    start = clock.now
    for _ in range(50):
        lim.acquire("sub", "reads")
    # 50 more at 25/s: 2 s, not the 10 s a moving window of 250 per 10 s made them wait
    assert clock.now - start == pytest.approx(2.0, abs=0.01)
    # writes are their own bucket (200 burst, 10/s)
    for _ in range(200):
        assert lim.acquire("sub", "writes") == 0.0
    start = clock.now
    lim.acquire("sub", "writes")
    assert clock.now - start == pytest.approx(0.1, abs=0.002)


def test_an_idle_bucket_refills_to_its_burst_and_no_further(redis_server: RedisServer) -> None:
    clock = FakeClock()
    lim = _fake(redis_server.url, clock, "fleet:tb2", reads=(10, 5.0))
    for _ in range(10):
        lim.acquire("sub", "reads")
    clock.now += 1.0  # 5 tokens back
    for _ in range(5):
        assert lim.acquire("sub", "reads") == 0.0
    assert lim.acquire("sub", "reads") > 0
    clock.now += 3600  # an hour idle: full again, but only 10
    for _ in range(10):
        assert lim.acquire("sub", "reads") == 0.0
    assert lim.acquire("sub", "reads") == pytest.approx(0.2, abs=0.002)
    assert lim.acquire("other", "reads") == 0.0  # another subscription: its own bucket


def test_a_429_empties_the_bucket_and_pauses_it(redis_server: RedisServer) -> None:
    clock = FakeClock()
    lim = _fake(redis_server.url, clock, "fleet:tb3", reads=(100, 10.0))
    lim.acquire("sub", "reads")
    lim.pause("sub", "reads", 0.5)
    # the pause is real time (a Redis TTL); then the empty bucket has refilled 10/s since it
    waited = lim.acquire("sub", "reads")
    assert waited > 0


def _spend(url: str, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    limiter = RedisLimiter(url, budgets={"reads": (20, 20.0)}, principal="p", prefix="fleet:test")
    got = 0
    end = time.monotonic() + seconds
    while True:
        try:
            limiter.acquire("sub-a", "reads", deadline=end)
        except TimeoutError:
            break  # the next token comes after the end of the test window
        got += 1
    out.put(got)


def test_three_processes_share_one_bucket(redis_server: RedisServer) -> None:
    RedisLimiter(
        redis_server.url, budgets={"reads": (20, 20.0)}, principal="p", prefix="fleet:test"
    ).reset()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_spend, args=(redis_server.url, 3.0, out)) for _ in range(3)]
    start = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    elapsed = time.monotonic() - start
    total = sum(out.get(timeout=5) for _ in procs)
    # A bucket of 20 refilled at 20/s admits at most 20 + 20 per second, whoever asks...
    assert total <= 20 + 20 * elapsed, (total, elapsed)
    # ...and it is spent, not starved: the burst and most of 3 s of refill.
    assert total >= 20 + 20 * 2.5, total


def test_a_429_pauses_every_holder(redis_server: RedisServer) -> None:
    a = RedisLimiter(
        redis_server.url, budgets={"reads": (100, 100.0)}, principal="p", prefix="fleet:test2"
    )
    b = RedisLimiter(
        redis_server.url, budgets={"reads": (100, 100.0)}, principal="p", prefix="fleet:test2"
    )
    a.reset()
    a.pause("sub", "reads", 1.0)
    start = time.monotonic()
    b.acquire("sub", "reads")  # another process's limiter waits out the shared pause
    assert time.monotonic() - start >= 0.9

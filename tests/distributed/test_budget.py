"""The Redis-backed ARM budget: several processes together stay inside one bucket."""

from __future__ import annotations

import multiprocessing
import time

from fleet.record.budget import RedisLimiter
from tests.distributed.conftest import RedisServer


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
    # A window of 20 per second over ~3 s admits at most ~60-80 in all, whoever asks.
    assert total <= 20 * (elapsed + 1), (total, elapsed)
    # ...and the budget is actually used, not starved: at least two windows' worth.
    assert total >= 40, total


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

"""A bounded, interruptible parallel map for I/O-bound work (sweeps, snapshots, waves).

``bounded_map`` keeps at most ``2 × concurrency`` items in flight (``window``), so an inventory
of 100,000 clusters is consumed as a stream rather than queued whole, and yields results as they
finish. A remediation wave passes ``window=concurrency``: no cluster is taken from its feed
before a thread is free for it, so a stop decided after one cluster holds for every later one.
When ``cancel`` is set or Ctrl-C arrives it stops taking new items, lets the running ones finish
and yields their results too, then reports the interruption through ``Interrupted.happened``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Interrupted:
    """Set when a ``bounded_map`` stopped before consuming every item."""

    def __init__(self) -> None:
        self.happened = False


def bounded_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    concurrency: int,
    cancel: threading.Event,
    interrupted: Interrupted | None = None,
    name: str = "fleet",
    window: int | None = None,
) -> Iterator[R]:
    """Apply ``fn`` to ``items`` on ``concurrency`` threads; yield results in completion order.
    At most ``window`` items (default ``2 × concurrency``) are taken ahead of their results."""
    flag = interrupted or Interrupted()
    window = max(1, window if window is not None else max(1, concurrency) * 2)
    pending: set[Future[R]] = set()
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix=name)
    try:
        try:
            for item in items:
                if cancel.is_set():
                    flag.happened = True
                    break
                pending.add(pool.submit(fn, item))
                if len(pending) >= window:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        yield fut.result()
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
                if cancel.is_set() and pending:
                    flag.happened = True
        except KeyboardInterrupt:
            # Ctrl-C: take no new work, let the in-flight items finish, keep their results.
            log.warning("interrupted: finishing %d in-flight items", len(pending))
            flag.happened = True
            cancel.set()
            for fut in pending:
                fut.cancel()
            done, _ = wait(pending)
            for fut in done:
                if not fut.cancelled() and fut.exception() is None:
                    yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

"""Counting a remediation job's ARM reads by what they were for.

A job reads ARM to plan (the planning sweep), right before each write (``prewrite``), to poll
its operations (``poll``) and to verify the written clusters (``verify``); anything else (the
catalogue, subscriptions, maintenance configurations) is ``other``. The phase is a context
variable set around each step (``phase("verify")``), and ``ReadCounts`` listens to the
session's request counter (``AzureSession.requests``, which sees every HTTP attempt, retries
and 429s included), so the figures are what ARM's read bucket was charged, not what the code
meant to send. Threads do not inherit the phase: each step sets it where it runs. The job
report carries the counts (``reads``), and ``benchmarks/bench_remediate.py`` prints them per
written cluster.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

PHASES = ("planning", "prewrite", "poll", "verify", "other")

_phase: ContextVar[str] = ContextVar("fleet_read_phase", default="other")


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Attribute the ARM reads made inside the block (in this thread) to ``name``."""
    token = _phase.set(name)
    try:
        yield
    finally:
        _phase.reset(token)


class ReadCounts:
    """A listener of ``AzureSession.requests``: ARM read attempts by phase."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, op: str, status: int) -> None:
        if op != "reads":
            return
        name = _phase.get()
        with self._lock:
            self.counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {p: self.counts.get(p, 0) for p in PHASES}


def attach(listeners: list[object]) -> ReadCounts:
    """A new ``ReadCounts`` listening on ``listeners`` (``session.requests.listeners``)."""
    counts = ReadCounts()
    listeners.append(counts)
    return counts


_by_session: dict[int, tuple[object, ReadCounts]] = {}
_registry_lock = threading.Lock()


def for_session(session: object) -> ReadCounts:
    """The read counts of a session (``AzureSession``), attached on first use."""
    with _registry_lock:
        found = _by_session.get(id(session))
        if found is not None and found[0] is session:
            return found[1]
        requests = getattr(session, "requests", None)
        # A session without a request counter (a test's stand-in) counts nothing.
        counts = attach(requests.listeners) if requests is not None else ReadCounts()
        _by_session[id(session)] = (session, counts)
        return counts

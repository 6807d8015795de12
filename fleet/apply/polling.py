"""One poller for a wave's running writes: each operation is looked at when ARM said to.

azure-core's ``LROPoller`` polls every operation on a thread of its own, from the moment the
request is answered, and ends with a GET of the resource: three or more reads per write, one
loop per cluster. A wave's writes are instead started ``deferred`` (``fleet.azure.apply``) and
handed to a ``WavePoller``: one scheduler thread keeps them in order of their next due time
(the ``Retry-After`` of ARM's last answer, ``apply.DEFAULT_RETRY_AFTER`` without one) and
reads each operation's status once when it is due (``apply.poll_once``), on a pool of threads
(one per cluster in flight) so that a slow answer, or a poll waiting on the read bucket, does
not hold the others back. A finished operation is not followed by a
read of the resource: the wave's verification reads it.

``wait(started)`` blocks the calling thread (a cluster of the local engine's pool) until its
operation ends or ``timeout`` seconds pass (an ``OperationTimeout`` outcome, as
``apply.finish`` gives). The operation's continuation token is stored before it is handed
over, so a process that dies here leaves nothing ``resume`` cannot finish.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fleet.apply import readcount
from fleet.azure import apply
from fleet.azure.session import AzureSession
from fleet.core.failures import ArmFailure

log = logging.getLogger(__name__)

#: Threads that read due operations by default (the scheduler itself is one more); the local
#: engine gives one per cluster in flight.
POLL_THREADS = 4


@dataclass
class _Pending:
    started: apply.Started
    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    outcome: apply.Outcome | None = None
    polls: int = 0


class WavePoller:
    """The shared poller of one wave (a context manager: the thread lives inside it)."""

    def __init__(
        self,
        session: AzureSession,
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        threads: int = POLL_THREADS,
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.clock = clock
        self._heap: list[tuple[float, int, _Pending]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        #: Status reads made (for the job's read counts and the tests).
        self.polls = 0

    def __enter__(self) -> WavePoller:
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="fleet-poll")
        self._thread = threading.Thread(target=self._run, name="fleet-wave-poller", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        # Nobody may wait forever on a poller that is gone.
        for _, _, entry in self._heap:
            self._settle(entry, self._timed_out(entry, "the job stopped polling it"))

    def wait(self, started: apply.Started) -> apply.Outcome:
        """Poll ``started`` (a deferred start) to its end; blocks until then."""
        if started.done is not None:
            return started.done
        if started.failed is not None or started.operation_url is None:
            return apply.finish(started)
        entry = _Pending(started, self.clock() + self.timeout)
        self._push(entry, started.retry_after)
        entry.done.wait()
        assert entry.outcome is not None
        return entry.outcome

    # -- the scheduler -----------------------------------------------------------------

    def _push(self, entry: _Pending, after: float) -> None:
        with self._cond:
            if self._closed:
                self._settle(entry, self._timed_out(entry, "the job stopped polling it"))
                return
            heapq.heappush(self._heap, (self.clock() + after, next(self._seq), entry))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > self.clock()):
                    wait = self._heap[0][0] - self.clock() if self._heap else None
                    self._cond.wait(timeout=wait)
                if self._closed:
                    return
                _, _, entry = heapq.heappop(self._heap)
            assert self._pool is not None
            try:
                self._pool.submit(self._poll, entry)
            except RuntimeError:  # the pool is shutting down: the job is over
                return

    def _poll(self, entry: _Pending) -> None:
        started = entry.started
        assert started.operation_url is not None
        try:
            with readcount.phase("poll"):
                answer = apply.poll_once(
                    self.session,
                    started.action,
                    started.operation_url,
                    started_at=started.started_at,
                    correlation_id=started.correlation_id,
                )
        except Exception as exc:  # a bug here must not leave a cluster waiting forever
            log.exception("poll of %s", started.action.resource_id)
            failure = ArmFailure(None, type(exc).__name__, str(exc)[:300], False)
            answer = apply.Poll(
                apply.Outcome(started.action, False, failure, started.correlation_id)
            )
        with self._cond:
            self.polls += 1
        entry.polls += 1
        if answer.outcome is not None:
            self._settle(entry, answer.outcome)
        elif self.clock() >= entry.deadline:
            self._settle(entry, self._timed_out(entry, f"still running after {self.timeout:.0f}s"))
        else:
            self._push(entry, answer.retry_after)

    def _timed_out(self, entry: _Pending, why: str) -> apply.Outcome:
        started = entry.started
        return apply.Outcome(
            started.action,
            False,
            ArmFailure(None, "OperationTimeout", why, True),
            started.correlation_id,
            started.started_at,
            datetime.now(UTC),
        )

    @staticmethod
    def _settle(entry: _Pending, outcome: apply.Outcome) -> None:
        if not entry.done.is_set():
            entry.outcome = outcome
            entry.done.set()

"""A stub dispatcher: task messages kept in a queue and run as plain calls (tests).

Modelled on dramatiq's ``StubBroker``: ``send`` queues a message instead of publishing it, and
``run`` delivers queued messages to the task bodies of ``workers.remediation_flow`` one at a
time until none is left. Time is the stub's own (``StubClock``): a message sent with a
countdown is due that many seconds later, ``run`` always delivers the message due first and
moves the clock to it, so claims and approval timeouts expire as they would, without waiting.
A test sees every message before it runs (``before``) and may drop, reorder or send copies,
which is how it produces a redelivered or a lost message on purpose.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workers import remediation_flow as flow


@dataclass
class StubClock:
    """Seconds since the epoch, moved only by the stub (and tests)."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass(order=True)
class Message:
    due: float
    seq: int
    task: str = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)


@dataclass
class StubDispatch:
    clock: StubClock = field(default_factory=StubClock)
    queue: list[Message] = field(default_factory=list)
    delivered: list[Message] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, task: str, args: tuple[Any, ...], *, countdown: float = 0) -> None:
        message = Message(self.clock.now + max(0.0, countdown), next(self._seq), task, tuple(args))
        heapq.heappush(self.queue, message)

    def pending(self, task: str | None = None) -> list[Message]:
        return sorted(m for m in self.queue if task is None or m.task == task)

    def run(
        self,
        ctx: flow.Context,
        *,
        limit: int = 10_000,
        before: Callable[[Message], bool | None] | None = None,
    ) -> int:
        """Deliver messages, the one due first each time, until none is left; returns how many
        ran. ``before(message)`` returning False drops the message (a lost one)."""
        bodies: dict[str, Callable[..., Any]] = {
            flow.START: flow.start,
            flow.WAVE: flow.wave,
            flow.CLUSTER: flow.cluster,
            flow.POLL: flow.poll,
            flow.WAVE_WRITTEN: flow.wave_written,
            flow.VERIFY: flow.verify,
            flow.VERIFY_WAVE: flow.verify_wave,
            flow.RESUME: flow.resume,
        }
        ran = 0
        while self.queue:
            if ran >= limit:
                raise RuntimeError(f"still {len(self.queue)} messages after {limit}: a loop?")
            message = heapq.heappop(self.queue)
            self.clock.now = max(self.clock.now, message.due)
            if before is not None and before(message) is False:
                continue
            self.delivered.append(message)
            bodies[message.task](ctx, *message.args)
            ran += 1
        return ran

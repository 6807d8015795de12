"""The policy sweep on one machine: discover, observe and judge every targeted cluster.

A bounded thread pool (``Settings.concurrency``) judges clusters while ARM's read budget
(``fleet.azure.ratelimit``) paces the requests. Results flow to sinks as they arrive: the
summary, the history database (in batches) and the caller's collector, so a sweep's memory does
not have to grow with the fleet. Ctrl-C (or ``cancel``) stops submitting work, lets the
in-flight clusters finish, and records the sweep as incomplete with what was judged.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from fleet.azure.catalogs import CatalogCache
from fleet.azure.inventory import Inventory, Subscription, provider_registrations
from fleet.azure.session import AzureSession
from fleet.desired.fingerprints import Fingerprints
from fleet.evaluate.verdicts import Verdict
from fleet.jobs.pool import Interrupted, bounded_map
from fleet.jobs.work import Target, discover, judge_cluster
from fleet.plan.pipeline import Judgement
from fleet.policy.loading import PolicySet
from fleet.report.model import SummaryBuilder, SweepInfo

log = logging.getLogger(__name__)


def new_sweep_id(now: datetime) -> str:
    """Sortable, human-readable and unique: ``20261125T180200Z-3f9a1c``."""
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class Progress(Protocol):
    """What the sweep tells its caller (a rich progress bar, a Celery job, a test)."""

    def started(self, total: int | None) -> None: ...
    def advanced(self, judgement: Judgement) -> None: ...
    def discovered(self, count: int) -> None: ...


class NullProgress:
    def started(self, total: int | None) -> None:
        pass

    def advanced(self, judgement: Judgement) -> None:
        pass

    def discovered(self, count: int) -> None:
        pass


class VerdictSink(Protocol):
    def add(self, judgement: Judgement) -> None: ...


@dataclass
class SweepOutcome:
    """What a finished (or stopped) sweep produced."""

    info: SweepInfo
    summary: dict[str, Any]
    judgements: list[Judgement] = field(default_factory=list)
    #: Why the sweep stopped before the end, when something other than a cancel stopped it
    #: (the kill switch: ``fleet.jobs.killswitch``).
    stopped_by: str | None = None

    @property
    def verdicts(self) -> list[Verdict]:
        return [j.verdict for j in self.judgements]

    def report(self) -> dict[str, Any]:
        clusters = sorted(
            (j.verdict.to_report() for j in self.judgements), key=lambda c: c["id"].lower()
        )
        return {"sweep": self.info.to_report(), "summary": self.summary, "clusters": clusters}


@dataclass
class _Counter:
    n: int = 0


class Sweep:
    """One sweep run by the local engine. Build it, then ``run()`` it once."""

    def __init__(
        self,
        *,
        session: AzureSession,
        inventory: Inventory,
        policy_set: PolicySet,
        subscriptions: list[Subscription],
        fingerprints: Fingerprints | None = None,
        now: datetime | None = None,
        concurrency: int | None = None,
        progress: Progress | None = None,
        sinks: Iterable[VerdictSink] = (),
        keep_judgements: bool = True,
        cancel: threading.Event | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        halt: Callable[[], str | None] | None = None,
        sweep_id: str | None = None,
    ) -> None:
        self.session = session
        self.inventory = inventory
        self.policy_set = policy_set
        self.subscriptions = subscriptions
        self.fingerprints = fingerprints
        self.clock = clock
        self.now = now or clock()
        self.concurrency = concurrency or session.settings.concurrency
        self.progress = progress or NullProgress()
        self.sinks = list(sinks)
        self.keep = keep_judgements
        self.cancel = cancel or threading.Event()
        self.catalogs = CatalogCache(inventory)
        #: Given by a caller that announced the id before the sweep began (the service).
        self.id = sweep_id or new_sweep_id(self.now)
        #: Asked before each cluster is taken: a reason to stop now (the kill switch), or None.
        self.halt = halt
        self.stopped_by: str | None = None

    def info(self, *, finished: datetime | None, targets: int, complete: bool) -> SweepInfo:
        return SweepInfo(
            id=self.id,
            started_at=self.now,
            finished_at=finished,
            policy_revision=self.policy_set.revision,
            engine="local",
            inventory=self.inventory.name,
            policies=[p.name for p in self.policy_set.policies],
            subscriptions=[s.id for s in self.subscriptions],
            complete=complete,
            interrupted=not complete,
            targets=targets,
            requests=self.session.requests.snapshot(),
        )

    def run(self) -> SweepOutcome:
        """Judge every target. Returns even when interrupted (``info.complete`` says which)."""
        summary = SummaryBuilder()
        judgements: list[Judgement] = []
        counter = _Counter()
        interrupted = Interrupted()
        started = time.monotonic()
        self.progress.started(None)

        def targets() -> Iterator[Target]:
            states = provider_registrations(self.session, [s.id for s in self.subscriptions])
            for target in discover(
                self.policy_set,
                self.inventory,
                self.subscriptions,
                today=self.now.date(),
                bulk=True,
                registrations=states,
            ):
                if self.halt is not None:
                    why = self.halt()
                    if why is not None:
                        log.warning("sweep %s stopped: %s", self.id, why)
                        self.stopped_by = why
                        self.cancel.set()  # in-flight clusters finish; retries stop
                        return
                counter.n += 1
                self.progress.discovered(counter.n)
                yield target

        for judgement in bounded_map(
            self._judge,
            targets(),
            concurrency=self.concurrency,
            cancel=self.cancel,
            interrupted=interrupted,
            name="fleet-sweep",
        ):
            summary.add(judgement.verdict)
            for sink in self.sinks:
                sink.add(judgement)
            if self.keep:
                judgements.append(judgement)
            self.progress.advanced(judgement)
        finished = self.clock()
        complete = not interrupted.happened and self.stopped_by is None
        info = self.info(finished=finished, targets=counter.n, complete=complete)
        log.info(
            "sweep %s: %d clusters in %.1fs (%s)",
            self.id,
            summary.clusters,
            time.monotonic() - started,
            "complete" if complete else "interrupted",
        )
        return SweepOutcome(
            info=info, summary=summary.build(), judgements=judgements, stopped_by=self.stopped_by
        )

    def _judge(self, target: Target) -> Judgement:
        return judge_cluster(
            self.session,
            target,
            catalogs=self.catalogs,
            now=self.now,
            fingerprints=self.fingerprints,
            should_stop=self.cancel.is_set,
        )

"""The local engine of a remediation job: waves run by a thread pool on this machine.

Only scheduling lives here; every rule of the job (how it stops, its budget, how it ends, what
is recorded) is ``fleet.apply.lifecycle``'s, and every step on a cluster is
``fleet.apply.steps``'s, exactly as the Celery engine uses them. Waves run in order, each behind
its optional approval gate, ``maxConcurrency`` clusters at a time, then the soak, then the
verification. After every cluster and every verification the failure budget is checked; once it
is exceeded nothing more is written. A cancel request (``fleet jobs cancel``, Ctrl-C) or the kill
switch stops the job between clusters: in-flight clusters finish and are verified. Each
cluster is written under its lock in the history database (``fleet.record.locks``): a cluster
another job is writing is left for retry (``locked``), never written by two jobs at once.

A job whose process died (``kill -9``, a lost machine) is continued with ``resume``
(``fleet remediate --resume JOB``): the writes it had sent are polled to their end from their
persisted continuation tokens, then the clusters it had not finished go through the same waves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fleet.apply import lifecycle, readcount, steps
from fleet.apply.lifecycle import Budget, JobResult, JobStatus, StopReason
from fleet.apply.outcomes import Category, ClusterOutcome, ClusterStatus
from fleet.apply.polling import WavePoller
from fleet.apply.spec import ClusterTask, JobSpec
from fleet.apply.steps import Edges
from fleet.apply.waves import WavePlan
from fleet.core.errors import CannotResume
from fleet.core.ids import key
from fleet.jobs import killswitch
from fleet.jobs.pool import Interrupted, bounded_map
from fleet.jobs.runs import Environment
from fleet.notify import announce

log = logging.getLogger(__name__)

#: Seconds between looks at the history database for a cancel request or an approval.
CONTROL_POLL_SECONDS = 0.5
#: Seconds between the running job's heartbeats in the history database (``updated_at``):
#: ``resume`` refuses a job whose heartbeat is younger than three of them (it still runs).
HEARTBEAT_SECONDS = 10.0
#: Seconds a cluster's write lock outlives the job's operation timeout (a dead process's lock
#: frees the cluster after both).
LOCK_MARGIN_SECONDS = 600


class JobProgress(Protocol):
    """What the job tells its caller (a rich display on a terminal, a test)."""

    def wave_started(self, wave: WavePlan, total: int) -> None: ...
    def phase(self, wave: WavePlan, text: str) -> None: ...
    def cluster_done(self, outcome: ClusterOutcome) -> None: ...
    def wave_finished(self, wave: WavePlan, counts: Mapping[str, int]) -> None: ...


class NullJobProgress:
    def wave_started(self, wave: WavePlan, total: int) -> None:
        pass

    def phase(self, wave: WavePlan, text: str) -> None:
        pass

    def cluster_done(self, outcome: ClusterOutcome) -> None:
        pass

    def wave_finished(self, wave: WavePlan, counts: Mapping[str, int]) -> None:
        pass


@dataclass(frozen=True)
class Steps:
    """The per-cluster steps the runner schedules (``fleet.apply.steps``; tests pass others)."""

    write: Callable[[Edges, JobSpec, ClusterTask], ClusterOutcome] = steps.remediate_cluster
    verify: Callable[[Edges, JobSpec, ClusterTask, ClusterOutcome], ClusterOutcome] = (
        steps.verify_cluster
    )


class _Control:
    """Watches the history database while the job runs: cancel requests, the kill switch, and
    the job's heartbeat."""

    def __init__(self, runner: _Runner) -> None:
        self.runner = runner
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-job-control", daemon=True)

    def __enter__(self) -> _Control:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        runner = self.runner
        beat = time.monotonic()
        while not self._done.wait(CONTROL_POLL_SECONDS):
            try:
                if runner.history.cancel_requested(runner.spec.id):
                    runner.stop(StopReason.cancelled())
                runner.kill_switch()
                if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                    runner.history.update_job(runner.spec.id)
                    beat = time.monotonic()
            except Exception as exc:  # a locked database must not kill the job
                log.debug("job control check failed: %s", exc)


def _wait(cancel: threading.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``cancel``; Ctrl-C meanwhile cancels. True when cancelled."""
    try:
        return cancel.wait(seconds) if seconds > 0 else cancel.is_set()
    except KeyboardInterrupt:
        cancel.set()
        return True


class _Runner:
    """One run of a recorded job on this machine (``run_remediation`` is its front door)."""

    def __init__(
        self,
        env: Environment,
        spec: JobSpec,
        edges: Edges,
        progress: JobProgress,
        cancel: threading.Event,
        approval_timeout: float,
        clock: Callable[[], float],
        work: Steps,
        result: JobResult,
    ) -> None:
        self.spec, self.edges, self.history = spec, edges, edges.history
        self.settings = env.settings
        self.progress, self.cancel = progress, cancel
        self.approval_timeout, self.clock, self.work = approval_timeout, clock, work
        self.result = result
        self.budget = Budget.of(spec)
        rollout = spec.choice.rollout
        # maxConcurrency is a ceiling; FLEET_CONCURRENCY also sizes the HTTP pool.
        self.concurrency = max(1, min(rollout.max_concurrency, env.settings.concurrency))
        self.failures = sum(1 for o in result.outcomes.values() if o.status is ClusterStatus.FAILED)
        self._stop: StopReason | None = None
        # The stop reason and the counters change from the pool's threads and the control
        # thread at once.
        self._lock = threading.Lock()

    # -- stopping -------------------------------------------------------------------------

    @property
    def stopped(self) -> StopReason | None:
        with self._lock:
            return self._stop

    def stop(self, reason: StopReason | None) -> None:
        """Stop taking new clusters (the first reason wins); in-flight ones finish."""
        if reason is None:
            return
        with self._lock:
            if self._stop is None:
                self._stop = reason
                log.warning("job %s: %s", self.spec.id, reason.message)
        self.cancel.set()

    def kill_switch(self) -> bool:
        """True once the kill switch is engaged, or cannot be read (writes fail closed)."""
        found = killswitch.for_writes(self.history)
        if found.engaged:
            self.stop(StopReason.kill_switch(found.describe()))
        return found.engaged

    def _cancelled(self) -> StopReason | None:
        """The stop in force, counting a bare cancel (Ctrl-C, the cancel event) as one."""
        if self.cancel.is_set():
            self.stop(StopReason.cancelled())
        return self.stopped

    # -- bookkeeping ---------------------------------------------------------------------

    def update(self, status: JobStatus, **progress: Any) -> None:
        self.history.update_job(
            self.spec.id,
            status=status.value,
            counters=self.result.counts(),
            summary={"progress": progress} if progress else None,
        )

    def count(self, wave: WavePlan, o: ClusterOutcome) -> None:
        with self._lock:
            self.result.outcomes[key(o.cluster_id)] = o
            if o.status is ClusterStatus.FAILED:
                self.failures += 1
            failures = self.failures
        steps.store(self.history, self.spec.id, o)
        if o.status is not ClusterStatus.APPLIED:  # settled: another job may write it now
            self.history.unlock_cluster(o.cluster_id, self.spec.id)
        self.progress.cluster_done(o)
        self.stop(self.budget.stop(wave.name, failures))

    # -- a wave ----------------------------------------------------------------------------

    def approve(self, wave: WavePlan) -> bool:
        """Wait for the wave's approval; False when the job must stop instead."""
        if not wave.approval or self.history.approved(self.spec.id, wave.name):
            return True
        self.update(JobStatus.AWAITING_APPROVAL, waitingFor=wave.name, wave=wave.name)
        self.progress.phase(wave, f"awaiting approval: fleet jobs approve {self.spec.id}")
        log.info("job %s: wave %s waits for approval", self.spec.id, wave.name)
        announce.job_awaiting_approval(
            self.settings, self.history, self.spec.id, wave.name, self.spec.policy
        )
        since = self.clock()
        while not self.history.approved(self.spec.id, wave.name):
            if self._cancelled() is not None:
                return False
            expired = lifecycle.approval_expired(
                wave.name, self.clock() - since, self.approval_timeout
            )
            if expired is not None:
                self.stop(expired)
                return False
            _wait(self.cancel, CONTROL_POLL_SECONDS)
        return True

    def write(self, task: ClusterTask) -> ClusterOutcome:
        # One writer per cluster across every job of the installation, as on the Celery
        # engine; the lock outlives a dead process only as long as its slowest write.
        ttl = int(self.edges.operation_timeout) + LOCK_MARGIN_SECONDS
        if not self.history.lock_cluster(task.id, self.spec.id, ttl_seconds=ttl):
            return lifecycle.locked(task, self.history.cluster_lock_holder(task.id))
        prior = self.result.outcomes[task.facts.key]
        try:
            outcome = self.work.write(self.edges, self.spec, task)
        except Exception as exc:  # one cluster's bug must not sink the job
            log.exception("cluster %s", task.id)
            outcome = lifecycle.internal_error(task, exc)
        return lifecycle.after_resume(prior, outcome) if prior.writes else outcome

    def check(self, o: ClusterOutcome) -> ClusterOutcome:
        task = self.spec.task_of(o.cluster_id)
        try:
            return self.work.verify(self.edges, self.spec, task, o)
        except Exception as exc:
            log.exception("verify %s", o.cluster_id)
            return lifecycle.internal_error(task, exc)

    def apply_wave(self, wave: WavePlan, tasks: list[ClusterTask]) -> list[ClusterOutcome]:
        """Write the wave's clusters; stop taking new ones on cancel, kill switch or budget."""
        stop = threading.Event()
        started: set[str] = set()

        def relay() -> None:
            while not stop.is_set():
                if self.cancel.wait(0.2):
                    stop.set()

        def submitted() -> Iterator[ClusterTask]:
            for t in tasks:
                if self.kill_switch() or self.stopped is not None:
                    return
                started.add(t.facts.key)
                yield t

        relay_thread = threading.Thread(target=relay, name="fleet-job-relay", daemon=True)
        relay_thread.start()
        applied: list[ClusterOutcome] = []
        interrupted = Interrupted()
        # One poller for the wave's running writes, each polled when its Retry-After is due.
        # As many poll threads as clusters in flight: a poll waiting on the read bucket (or a
        # slow answer) must not hold back the others.
        poller = WavePoller(
            self.edges.session, timeout=self.edges.operation_timeout, threads=self.concurrency
        )
        edges = self.edges
        self.edges = replace(edges, poller=poller)
        try:
            poller.__enter__()
            for o in bounded_map(
                self.write,
                submitted(),
                concurrency=self.concurrency,
                cancel=stop,
                interrupted=interrupted,
                name="fleet-remediate",
                window=self.concurrency,
            ):
                self.count(wave, o)
                if o.status is ClusterStatus.APPLIED:
                    applied.append(o)
                if self.stopped is not None:
                    stop.set()  # in-flight clusters finish; no new one starts
        finally:
            stop.set()
            relay_thread.join(timeout=2)
            poller.__exit__()
            self.edges = edges
        if interrupted.happened:
            self.cancel.set()  # Ctrl-C: bounded_map stopped the wave; the job stops too
        reason = self._cancelled()
        for t in tasks:
            if t.facts.key not in started:
                self.count(wave, lifecycle.not_started(t, reason))
        return applied

    def verify_wave(self, wave: WavePlan, applied: list[ClusterOutcome]) -> None:
        self.progress.phase(wave, "verifying")
        # Verification only reads: it runs to the end even when the job is stopping, so every
        # written cluster gets an honest status.
        # The whole wave through one Resource Graph query first; ARM reads what it cannot show.
        try:
            fixed, rest = steps.verify_bulk(self.edges, self.spec, applied)
        except Exception:
            log.exception("verify wave %s through Resource Graph", wave.name)
            fixed, rest = [], applied
        for o in fixed:
            self.count(wave, o)
        never = threading.Event()
        for o in bounded_map(
            self.check, rest, concurrency=self.concurrency, cancel=never, name="fleet-verify"
        ):
            self.count(wave, o)

    def run_wave(self, wave: WavePlan, last: bool) -> None:
        spec = self.spec
        # A resumed job writes only what its first run did not finish.
        tasks = [
            spec.task_of(c)
            for c in wave.clusters
            if self.result.outcomes[key(c)].status in (ClusterStatus.PENDING, ClusterStatus.APPLIED)
        ]
        pending = [
            t for t in tasks if self.result.outcomes[t.facts.key].status is ClusterStatus.PENDING
        ]
        written = [self.result.outcomes[t.facts.key] for t in tasks if t not in pending]
        self.update(JobStatus.RUNNING, wave=wave.name)
        self.progress.wave_started(wave, len(wave.clusters))
        self.progress.phase(wave, "writing")
        log.info("job %s: wave %s: %d clusters", spec.id, wave.name, len(tasks))
        applied = written + self.apply_wave(wave, pending)
        soak = spec.choice.rollout.soak_seconds
        if applied and not last and self.stopped is None and soak:
            self.progress.phase(wave, f"soaking {soak}s")
            if _wait(self.cancel, soak):
                self._cancelled()
        if applied:
            self.verify_wave(wave, applied)
        tally = Counter(self.result.outcomes[key(c)].status.value for c in wave.clusters)
        self.progress.wave_finished(wave, tally)
        log.info("job %s: wave %s done: %s", spec.id, wave.name, dict(tally))

    def run(self) -> JobResult:
        spec = self.spec
        self.update(JobStatus.RUNNING)
        waves = spec.waves_with_work()
        with _Control(self):
            for i, wave in enumerate(waves):
                self.kill_switch()
                if self._cancelled() is not None or not self.approve(wave):
                    break
                self.run_wave(wave, last=i == len(waves) - 1)
            self._cancelled()
        result = self.result
        for o in result.finish(self.stopped):
            steps.store(self.history, spec.id, o)
        self.history.unlock_clusters([t.id for t in spec.tasks.values()], spec.id)
        summary = result.report(clusters=False)
        # ARM reads by phase (this process's: planning, pre-write, polls, verification).
        summary["reads"] = readcount.for_session(self.edges.session).snapshot()
        self.history.update_job(
            spec.id, status=result.status.value, counters=result.counts(), summary=summary
        )
        announce.job_finished(self.settings, self.history, summary)
        return result


def run_remediation(
    env: Environment,
    spec: JobSpec,
    edges: Edges,
    *,
    progress: JobProgress | None = None,
    cancel: threading.Event | None = None,
    approval_timeout: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    work: Steps | None = None,
    result: JobResult | None = None,
) -> JobResult:
    """Run a recorded job wave by wave on this machine (see the module docstring).

    ``cancel`` (or ``fleet jobs cancel`` from another terminal, or Ctrl-C) stops the job
    between clusters: in-flight clusters finish and are verified, nothing new is written.
    ``result``: where a resumed job stands (``resume``); a new job starts with every cluster
    pending.
    """
    runner = _Runner(
        env,
        spec,
        edges,
        progress or NullJobProgress(),
        cancel or threading.Event(),
        approval_timeout,
        clock,
        work or Steps(),
        result or lifecycle.start_result(spec, principal=edges.principal),
    )
    try:
        return runner.run()
    except BaseException:
        runner.history.update_job(
            spec.id, status=JobStatus.FAILED.value, counters=runner.result.counts()
        )
        raise


# --- resuming a job whose process died ------------------------------------------------------


def check_resumable(job: Mapping[str, Any], *, force: bool = False) -> None:
    """Refuse to resume a job that ended, or that another process still runs (its heartbeat
    is younger than three beats), unless ``force``."""
    status = JobStatus(job["status"])
    if status in lifecycle.ENDED:
        raise CannotResume(f"job {job['id']} is {status.value}: nothing to resume")
    if (job.get("options") or {}).get("engine") == "celery":
        raise CannotResume(
            f"job {job['id']} runs on the Celery engine: its workers resume it themselves"
        )
    updated = job.get("updatedAt")
    if updated and not force:
        age = datetime.now(UTC) - datetime.fromisoformat(str(updated))
        if age < timedelta(seconds=3 * HEARTBEAT_SECONDS):
            raise CannotResume(
                f"job {job['id']} was alive {age.total_seconds():.0f}s ago: stop it first "
                "(fleet jobs cancel), or pass --force if its process is gone"
            )


def where_it_stood(spec: JobSpec, rows: list[dict[str, Any]], edges: Edges) -> JobResult:
    """A job's result as its history says, once the writes its dead process left running are
    polled to their end (``steps.finish_orphans``). Final clusters keep their outcome; written
    ones wait for their wave's verification; the others are pending again, carrying the writes
    that succeeded (their next decision re-reads them and writes only what is missing)."""
    result = lifecycle.start_result(spec, principal=edges.principal)
    succeeded = steps.finish_orphans(edges, spec)
    for row in rows:
        k = key(row["clusterId"])
        if k not in spec.tasks:
            continue
        outcome = result.outcomes[k]
        for write in succeeded.get(k, []):
            outcome.add_write(write)
        status = ClusterStatus(row["status"])
        if status is ClusterStatus.APPLIED:
            outcome.settle(ClusterStatus.APPLIED, None, None)
        elif status is not ClusterStatus.PENDING:
            category = (row.get("outcome") or {}).get("category")
            outcome.settle(status, row.get("reason"), Category(category) if category else None)
    return result


def resume(
    env: Environment,
    spec: JobSpec,
    edges: Edges,
    **options: Any,
) -> JobResult:
    """Continue a recorded job whose process died (``check_resumable`` first): its orphaned
    writes are polled to their end, then its unfinished clusters run through its waves."""
    rows = edges.history.job_clusters(spec.id)
    result = where_it_stood(spec, rows, edges)
    log.info("job %s resumed: %s", spec.id, result.counts())
    return run_remediation(env, spec, edges, result=result, **options)

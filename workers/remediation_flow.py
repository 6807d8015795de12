"""The Celery engine of a remediation job: the bodies of its tasks, over Redis state.

Only scheduling lives here, as in the local engine (``fleet.jobs.local``): the job is prepared by
``fleet.jobs.preparing.prepare``, every rule of its life (stop reasons, budget, final status,
what is recorded) is ``fleet.apply.lifecycle``'s and every step on a cluster is
``fleet.apply.steps``'s. What differs is how the work is cut: no task waits minutes on ARM.

- ``start`` prepares and records the job on a worker, then starts wave 0;
- ``wave`` starts a wave after its approval (polling the history for it), or closes the job;
  it sends the first ``maxConcurrency`` clusters, and each cluster counted sends the next;
- ``cluster`` re-reads, re-judges and sends a cluster's first write; ``poll``
  (``workers.remediation_polls``) reads its operation's status once per ARM ``Retry-After``,
  sends the next write, and counts the cluster when its writes end;
- ``wave_written`` soaks, then sends one ``verify`` per written cluster, or, with the graph
  inventory, one ``verify_wave`` that checks them all through Resource Graph and sends
  ``verify`` (ARM) only for the clusters the graph does not show fixed; the last one to
  finish starts the next wave;
- ``resume`` sends again whatever a stalled job waits for (messages lost with a dead worker).

Exactly once: every step stores its outcome once (``JobState.store_written``, ``record``) and
counts set members, so a redelivered copy of any task finishes the first copy's work without
counting twice; each write takes a per-cluster lock, so two jobs never write one cluster at once.
Task bodies take a ``Context`` (job state, a dispatcher, the job's edges), so tests run them as
plain calls against ``MemoryJobState`` and ``workers.stub.StubDispatch``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from fleet.apply import lifecycle, steps
from fleet.apply.lifecycle import Budget, JobStatus, StopReason
from fleet.apply.outcomes import RETRY_STATUSES, ClusterOutcome, ClusterStatus
from fleet.apply.spec import JobRequest, JobSpec
from fleet.apply.steps import Edges
from fleet.core.errors import JobStateLost, PrepareError, StalePlan
from fleet.core.ids import key
from fleet.jobs import killswitch
from fleet.jobs.preparing import load_spec, prepare
from fleet.jobs.runs import Environment
from fleet.notify import announce
from fleet.policy.loading import PolicySet
from fleet.record.jobstate import JobState
from fleet.record.jobstate_memory import MemoryJobState

log = logging.getLogger("fleet.workers")

#: Seconds one poll task waits on an operation before handing it to the next poll task.
POLL_WINDOW = 5.0
#: Seconds between a write's start and its first poll, and between approval checks.
POLL_DELAY = 1.0
#: Job specs a worker keeps (they do not change while a job runs).
SPEC_CACHE = 32

START = "fleet.remediate.start"
WAVE = "fleet.remediate.wave"
CLUSTER = "fleet.remediate.cluster"
POLL = "fleet.remediate.poll"
WAVE_WRITTEN = "fleet.remediate.wave_written"
VERIFY = "fleet.remediate.verify"
VERIFY_WAVE = "fleet.remediate.verify_wave"
RESUME = "fleet.remediate.resume"


class Dispatch(Protocol):
    """Sends a task message by name (Celery in a worker, a list in a test)."""

    def send(self, task: str, args: tuple[Any, ...], *, countdown: float = 0) -> None: ...


@dataclass
class Context:
    """What a task body needs from its process."""

    jobs: JobState | MemoryJobState
    dispatch: Dispatch
    #: The environment and edges of a job (the job's operation timeout applied).
    edges: Callable[[dict[str, Any]], tuple[Environment, Edges]]
    policy_set: Callable[[dict[str, Any]], PolicySet]
    #: The kill switch as writes see it (fails closed).
    kill_switch: Callable[[], killswitch.State]
    #: Seconds a cluster claim outlives a dead worker (Celery's visibility timeout).
    claim_ttl: int = 30
    clock: Callable[[], float] = field(default=lambda: datetime.now(UTC).timestamp())
    _specs: OrderedDict[str, JobSpec] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def spec(self, job_id: str, meta: dict[str, Any]) -> JobSpec:
        """The job as recorded in history (cached: it does not change while it runs)."""
        with self._lock:
            found = self._specs.get(job_id)
            if found is not None:
                self._specs.move_to_end(job_id)
                return found
        edges = self.edges(meta)[1]
        spec = load_spec(
            edges.history,
            job_id,
            self.policy_set(meta["policies"]),
            edges.fingerprint_key,
            edges.session.vaults(),
        )
        with self._lock:
            self._specs[job_id] = spec
            while len(self._specs) > SPEC_CACHE:
                self._specs.popitem(last=False)
        return spec


def _stop_of(meta: dict[str, Any]) -> StopReason | None:
    return StopReason.from_json(meta.get("stopReason"))


def _stop(ctx: Context, job_id: str, reason: StopReason | None) -> None:
    """Record why the job stops; the first reason wins, also between workers."""
    if reason is not None and ctx.jobs.claim(job_id, "stop", ttl=ctx.jobs.ttl):
        ctx.jobs.set_meta(job_id, stopReason=reason.to_json())
        log.warning("remediation %s: %s", job_id, reason.message, extra={"job": job_id})


def _stopping(ctx: Context, job_id: str, edges: Edges) -> StopReason | None:
    """Why the job must not start new work, if it must not."""
    found = _stop_of(ctx.jobs.meta(job_id))
    if found is not None:
        return found
    if ctx.jobs.cancelled(job_id) or edges.history.cancel_requested(job_id):
        reason: StopReason | None = StopReason.cancelled()
    else:
        state = ctx.kill_switch()
        reason = StopReason.kill_switch(state.describe()) if state.engaged else None
    _stop(ctx, job_id, reason)
    return _stop_of(ctx.jobs.meta(job_id)) if reason is not None else None


# --- the job --------------------------------------------------------------------------------


def start(ctx: Context, job_id: str) -> None:
    """Prepare the job on this worker (plan, guards, waves), record it, start wave 0."""
    jobs = ctx.jobs
    try:
        meta = jobs.meta(job_id)
    except JobStateLost:
        log.error("remediation %s: no job state", job_id, extra={"job": job_id})
        return
    if meta.get("status") != "queued":
        return  # a redelivered start: the job was prepared already
    env, edges = ctx.edges(meta)
    request = JobRequest.from_json(meta["request"])
    try:
        spec = prepare(env, edges, ctx.policy_set(meta["policies"]), request, engine="celery")
    except StalePlan as exc:
        jobs.set_meta(job_id, status="failed", error=str(exc), changed=list(exc.changed))
        return
    except PrepareError as exc:
        jobs.set_meta(job_id, status="failed", error=str(exc))
        return
    spec.id = job_id
    steps.record_job(edges.history, spec, principal=edges.principal)
    edges.history.update_job(job_id, status=JobStatus.RUNNING.value)
    waves = spec.waves_with_work()
    jobs.set_meta(
        job_id,
        status="running",
        toWrite=len(spec.tasks),
        waves=[{"name": w.name, "clusters": len(w.clusters)} for w in waves],
        startedAt=datetime.now(UTC).isoformat(),
    )
    log.info(
        "remediation %s: %d clusters in %d waves",
        job_id,
        len(spec.tasks),
        len(waves),
        extra={"job": job_id},
    )
    ctx.dispatch.send(WAVE, (job_id, 0))


def wave(ctx: Context, job_id: str, index: int) -> None:
    """Start a wave (after its approval, when it needs one), or finish the job."""
    jobs = ctx.jobs
    if jobs.flagged(job_id, f"w{index}:done"):
        return  # a late duplicate of a wave that has ended
    meta = jobs.meta(job_id)
    env, edges = ctx.edges(meta)
    spec = ctx.spec(job_id, meta)
    waves = spec.waves_with_work()
    if _stopping(ctx, job_id, edges) is not None or index >= len(waves):
        finish(ctx, job_id)
        return
    this = waves[index]
    if this.approval and not edges.history.approved(job_id, this.name):
        since = float(meta.get("waitingSince") or 0) or ctx.clock()
        if not meta.get("waitingSince"):
            jobs.set_meta(job_id, status="awaiting-approval", waitingSince=since, wave=index)
            edges.history.update_job(
                job_id,
                status=JobStatus.AWAITING_APPROVAL.value,
                summary={"progress": {"waitingFor": this.name, "wave": this.name}},
            )
            announce.job_awaiting_approval(
                env.settings, edges.history, job_id, this.name, spec.policy
            )
        timeout = JobRequest.from_json(meta["request"]).approval_timeout
        expired = lifecycle.approval_expired(this.name, ctx.clock() - since, timeout)
        if expired is not None:
            _stop(ctx, job_id, expired)
            finish(ctx, job_id)
            return
        ctx.dispatch.send(WAVE, (job_id, index), countdown=POLL_DELAY)
        return
    jobs.set_meta(job_id, status="running", waitingSince=0, wave=index)
    edges.history.update_job(
        job_id, status=JobStatus.RUNNING.value, summary={"progress": {"wave": this.name}}
    )
    first = min(len(this.clusters), max(1, spec.choice.rollout.max_concurrency))
    # The cursor first, once: a copy of this task redelivered after sending sends the same
    # first clusters again, which their claims and stored outcomes make harmless.
    if f"w{index}:sent" not in jobs.counts(job_id):
        jobs.set_counts(job_id, **{f"w{index}:total": len(this.clusters), f"w{index}:sent": first})
    for cluster_id in this.clusters[:first]:
        ctx.dispatch.send(CLUSTER, (job_id, index, key(cluster_id)))


def cluster(ctx: Context, job_id: str, index: int, cluster: str) -> None:
    """Re-read, re-judge and start writing one cluster."""
    jobs = ctx.jobs
    meta = jobs.meta(job_id)
    edges = ctx.edges(meta)[1]
    spec = ctx.spec(job_id, meta)
    task = spec.tasks[cluster]
    stored = jobs.written(job_id, cluster)
    if stored is not None:
        # A redelivered message: the cluster is written, but the copy that wrote it may have
        # died before counting it; counting again is harmless (``_written`` is idempotent).
        _written(ctx, job_id, index, ClusterOutcome.from_state(stored))
        return
    if jobs.step(job_id, cluster) is not None:
        return  # a redelivered message: its write is under way, in the hands of poll tasks
    # One copy at a time: a wave started twice (two verifications finishing together both
    # start the next wave) sends each cluster twice. The claim outlives a dead worker only
    # as long as Celery takes to redeliver its message, so a killed copy is not waited on.
    if not jobs.claim(job_id, f"cluster:{cluster}", ttl=max(5, ctx.claim_ttl)):
        ctx.dispatch.send(CLUSTER, (job_id, index, cluster), countdown=max(5, ctx.claim_ttl) // 2)
        return
    reason = _stopping(ctx, job_id, edges)
    if reason is not None:
        _written(ctx, job_id, index, lifecycle.not_started(task, reason))
        return
    if not jobs.lock_cluster(cluster, job_id, ttl_seconds=int(edges.operation_timeout) + 600):
        _written(ctx, job_id, index, lifecycle.locked(task, jobs.cluster_lock_holder(cluster)))
        return
    try:
        decision = steps.decide_cluster(edges, spec, task)
    except Exception as exc:  # one cluster's bug must not sink the job
        log.exception("cluster %s", cluster, extra={"job": job_id, "cluster": cluster})
        decision = steps.Decision(lifecycle.internal_error(task, exc))
    if not decision.actions:
        _written(ctx, job_id, index, decision.outcome)
        return
    state = {
        "actions": [a.model_dump(mode="json", by_alias=True) for a in decision.actions],
        "step": 0,
        "outcome": decision.outcome.to_state(),
    }
    polls.begin(ctx, job_id, index, cluster, state, decision.values[0])


def _written(ctx: Context, job_id: str, index: int, outcome: ClusterOutcome) -> None:
    """A cluster of wave ``index`` is written (or will not be): count it once, and send the
    wave's next cluster (``maxConcurrency`` at a time)."""
    jobs = ctx.jobs
    cluster = key(outcome.cluster_id)
    outcome = ClusterOutcome.from_state(jobs.store_written(job_id, cluster, outcome.to_state()))
    meta = jobs.meta(job_id)
    spec = ctx.spec(job_id, meta)
    if outcome.status is not ClusterStatus.APPLIED:
        _final(ctx, job_id, spec, index, outcome)
    counts = jobs.counts(job_id)
    total = int(counts.get(f"w{index}:total", 0))
    new, size = jobs.enter(job_id, f"w{index}:written", cluster)
    if new:
        sent = jobs.incr(job_id, f"w{index}:sent")
        if sent <= total:
            members = spec.waves_with_work()[index].clusters
            ctx.dispatch.send(CLUSTER, (job_id, index, key(members[sent - 1])))
    if size >= total:
        ctx.dispatch.send(WAVE_WRITTEN, (job_id, index))  # guarded: it runs its work once


def _final(ctx: Context, job_id: str, spec: JobSpec, index: int, outcome: ClusterOutcome) -> None:
    """A cluster's last word: stored once, recorded in the history, its lock released, and
    counted against the failure budget."""
    jobs = ctx.jobs
    cluster = key(outcome.cluster_id)
    if not jobs.record(
        job_id, cluster, outcome.to_state(), counter=f"status:{outcome.status.value}"
    ):
        return
    edges = ctx.edges(jobs.meta(job_id))[1]
    steps.store(edges.history, job_id, outcome)
    jobs.unlock_cluster(cluster, job_id)
    if outcome.status is ClusterStatus.FAILED:
        failures = jobs.incr(job_id, "failures")
        wave_name = spec.waves_with_work()[index].name
        _stop(ctx, job_id, Budget.of(spec).stop(wave_name, failures))


def wave_written(ctx: Context, job_id: str, index: int) -> None:
    """Every cluster of the wave is written: soak, then verify the written ones."""
    jobs = ctx.jobs
    if jobs.flagged(job_id, f"w{index}:verifyDispatched"):
        return  # a duplicate: the verification of this wave is under way
    meta = jobs.meta(job_id)
    spec = ctx.spec(job_id, meta)
    waves = spec.waves_with_work()
    members = {key(c) for c in waves[index].clusters}
    applied = [
        k
        for k, v in jobs.all_written(job_id).items()
        if k in members and v["status"] == ClusterStatus.APPLIED.value
    ]
    jobs.set_counts(job_id, **{f"w{index}:toVerify": len(applied)})
    if not applied:
        _wave_done(ctx, job_id, index)
        jobs.flag(job_id, f"w{index}:verifyDispatched")
        return
    last = index == len(waves) - 1
    soak = 0 if last or _stop_of(meta) else spec.choice.rollout.soak_seconds
    # Marked dispatched only after sending: a copy redelivered because this one died half-way
    # sends them again (verification is idempotent: the first result stored wins).
    if ctx.edges(meta)[1].graph is not None:
        # The whole wave through Resource Graph first; it sends ``verify`` for the rest.
        ctx.dispatch.send(VERIFY_WAVE, (job_id, index), countdown=soak)
    else:
        for c in applied:
            ctx.dispatch.send(VERIFY, (job_id, index, c), countdown=soak)
    jobs.flag(job_id, f"w{index}:verifyDispatched")


def verify_wave(ctx: Context, job_id: str, index: int) -> None:
    """Verify the wave's written clusters through one Resource Graph query
    (``steps.verify_bulk``): the ones it shows fixed are counted here, each of the others
    gets a ``verify`` (ARM). A redelivered copy does the same for what is still open."""
    jobs = ctx.jobs
    meta = jobs.meta(job_id)
    edges = ctx.edges(meta)[1]
    spec = ctx.spec(job_id, meta)
    members = {key(c) for c in spec.waves_with_work()[index].clusters}
    outcomes = [
        ClusterOutcome.from_state(v)
        for k, v in jobs.all_written(job_id).items()
        if k in members
        and v["status"] == ClusterStatus.APPLIED.value
        and not jobs.has_result(job_id, k)
    ]
    try:
        fixed, rest = steps.verify_bulk(edges, spec, outcomes)
    except Exception:
        log.exception("verify wave %d through Resource Graph", index, extra={"job": job_id})
        fixed, rest = [], outcomes
    for o in rest:
        ctx.dispatch.send(VERIFY, (job_id, index, key(o.cluster_id)))
    for o in fixed:
        _final(ctx, job_id, spec, index, o)
        _verified(ctx, job_id, index, key(o.cluster_id))


def verify(ctx: Context, job_id: str, index: int, cluster: str) -> None:
    """Read a written cluster again: fixed, or failed with the reasons."""
    jobs = ctx.jobs
    if not jobs.has_result(job_id, cluster):
        meta = jobs.meta(job_id)
        edges = ctx.edges(meta)[1]
        spec = ctx.spec(job_id, meta)
        task = spec.tasks[cluster]
        outcome = ClusterOutcome.from_state(jobs.written(job_id, cluster) or {})
        try:
            outcome = steps.verify_cluster(edges, spec, task, outcome)
        except Exception as exc:
            log.exception("verify %s", cluster, extra={"job": job_id, "cluster": cluster})
            outcome = lifecycle.internal_error(task, exc)
        _final(ctx, job_id, spec, index, outcome)
    _verified(ctx, job_id, index, cluster)


def _verified(ctx: Context, job_id: str, index: int, cluster: str) -> None:
    # Counted by set membership, so a redelivered copy (the first died after storing the
    # result) still completes the wave, and never counts a cluster twice.
    jobs = ctx.jobs
    verified = jobs.join(job_id, f"w{index}:verified", cluster)
    if verified >= int(jobs.counts(job_id).get(f"w{index}:toVerify", 0)):
        _wave_done(ctx, job_id, index)


def _wave_done(ctx: Context, job_id: str, index: int) -> None:
    """Start the wave after ``index``. Sent first and marked after: a copy that dies in
    between is redelivered and sends it again, and a second start is harmless (a wave's
    clusters are claimed one copy at a time and counted once)."""
    if not ctx.jobs.flagged(job_id, f"w{index}:done"):
        ctx.dispatch.send(WAVE, (job_id, index + 1))
        ctx.jobs.flag(job_id, f"w{index}:done")


def resume(ctx: Context, job_id: str) -> int:
    """Send again what a stalled job waits for; returns how many messages were sent.

    Celery's Redis transport can lose a message outright when its worker is killed: BRPOP
    has taken it off the queue before the worker records it as unacknowledged, so no
    visibility timeout brings it back. ``follow`` (the CLI) and the beat's watchdog call this
    when a job makes no progress for ``FLEET_STALL_SECONDS``. Everything it sends is
    idempotent: written clusters are not written again, a write under way is only polled
    (one poll at a time), a verified cluster is only counted."""
    jobs = ctx.jobs
    meta = jobs.meta(job_id)
    status = meta.get("status")
    if status == "queued":
        ctx.dispatch.send(START, (job_id,))
        return 1
    index = int(meta.get("wave") or 0)
    if status == "awaiting-approval":
        ctx.dispatch.send(WAVE, (job_id, index))  # its approval poll was lost
        return 1
    if status != "running":
        return 0
    waves = ctx.spec(job_id, meta).waves_with_work()
    if index >= len(waves) or jobs.flagged(job_id, f"w{index}:done"):
        ctx.dispatch.send(WAVE, (job_id, index + 1))  # the next wave's start (or the close)
        return 1
    counts = jobs.counts(job_id)
    if f"w{index}:total" not in counts:
        ctx.dispatch.send(WAVE, (job_id, index))
        return 1
    members = [key(c) for c in waves[index].clusters]
    sent_so_far = min(len(members), int(counts.get(f"w{index}:sent", len(members))))
    written = jobs.all_written(job_id)
    under_way = jobs.stepping(job_id)
    sent = 0
    for c in members[:sent_so_far]:
        if c in under_way:
            ctx.dispatch.send(POLL, (job_id, index, c))
            sent += 1
        elif c not in written:
            ctx.dispatch.send(CLUSTER, (job_id, index, c))
            sent += 1
    if sent:
        return sent
    if not jobs.flagged(job_id, f"w{index}:verifyDispatched"):
        if len(written.keys() & set(members)) < len(members):
            # every sent cluster is written, but the next ones were never sent
            for c in members[sent_so_far:]:
                ctx.dispatch.send(CLUSTER, (job_id, index, c))
                sent += 1
            jobs.set_counts(job_id, **{f"w{index}:sent": len(members)})
            return sent
        ctx.dispatch.send(WAVE_WRITTEN, (job_id, index))
        return 1
    verified = jobs.members(job_id, f"w{index}:verified")
    for c in members:
        if written[c]["status"] == ClusterStatus.APPLIED.value and c not in verified:
            ctx.dispatch.send(VERIFY, (job_id, index, c))
            sent += 1
    if not sent:
        _wave_done(ctx, job_id, index)  # every cluster is counted: only the next step was lost
        return 1
    return sent


def finish(ctx: Context, job_id: str) -> None:
    """Close the job as the local engine does (``JobResult.finish``): clusters never reached
    are not started; status, counters and summary recorded; the end announced."""
    jobs = ctx.jobs
    meta = jobs.meta(job_id)
    if meta.get("status") == "complete":
        return  # closed already. Not guarded by a flag set on entry: a copy redelivered
        # because this one died half-way must still close the job (every step below repeats
        # harmlessly).
    env, edges = ctx.edges(meta)
    spec = ctx.spec(job_id, meta)
    stored = dict(jobs.results(job_id))
    # A worker killed between storing a cluster's outcome in Redis and in the history (or
    # before releasing its lock) leaves both behind: Redis holds the truth, so settle them.
    unsettled = {
        key(r["clusterId"])
        for r in edges.history.job_clusters(job_id, statuses=("pending", "applied"))
    }
    jobs.unlock_clusters(spec.tasks, job_id)
    result = lifecycle.start_result(spec, principal=edges.principal)
    result.started_at = datetime.fromisoformat(
        str(meta.get("startedAt") or datetime.now(UTC).isoformat())
    )
    for c in spec.tasks:
        if c in stored:
            result.outcomes[c] = ClusterOutcome.from_state(stored[c])
            if c in unsettled:
                steps.store(edges.history, job_id, result.outcomes[c])
    for o in result.finish(_stop_of(meta)):
        steps.store(edges.history, job_id, o)
    summary = result.report(clusters=False)
    edges.history.update_job(
        job_id, status=result.status.value, counters=result.counts(), summary=summary
    )
    announce.job_finished(env.settings, edges.history, summary)
    jobs.set_meta(
        job_id,
        status="complete",
        jobStatus=result.status.value,
        summary=summary,
        retry=[o.cluster_id for o in result.outcomes.values() if o.status in RETRY_STATUSES],
        finishedAt=datetime.now(UTC).isoformat(),
    )
    log.info(
        "remediation %s finished %s: %s",
        job_id,
        result.status.value,
        result.counts(),
        extra={"job": job_id},
    )


# The write-and-poll bodies live in their own module (this one stays under 600 lines); it
# imports this one, so it is imported last. ``poll`` is the ``fleet.remediate.poll`` task.
from workers import remediation_polls as polls  # noqa: E402

poll = polls.poll

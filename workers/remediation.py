"""Celery tasks of a remediation job: the local engine's steps, one task at a time.

The job is prepared on a worker with the same functions as ``fleet remediate`` (live plan,
saved plan or retry list; guards, waves, the safety rail) and recorded in the history database
(its audit trail), which every worker then reads it back from (``load_spec``). A wave fans out
one ``cluster`` task per cluster on the writes queue; a cluster task re-reads and re-judges the
cluster (``decide_cluster``), sends its first write and hands the long-running operation to
``poll`` tasks on the polls queue, which resume it from the persisted continuation token — no
task waits minutes on ARM. When a wave's last cluster is written, its clusters are verified
(``verify_cluster``), the failure budget is checked, and the next wave starts after the soak
time and, when the rollout asks for it, an approval (``fleet jobs approve``).

Exactly once: a cluster's outcome is stored with HSETNX and counted only when new; each write
takes a per-cluster Redis lock, so two jobs never write one cluster at once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from fleet.apply.waves import budget_exceeded, describe_budget
from fleet.azure import apply
from fleet.azure.errors import ArmFailure
from fleet.core.ids import key
from fleet.jobs.distributed import policy_set_of
from fleet.jobs.preparing import (
    PrepareError,
    StalePlan,
    load_spec,
    make_edges,
    prepare_from_plan,
    prepare_live,
    prepare_retry,
)
from fleet.jobs.remediate import (
    RETRY_STATUSES,
    ClusterOutcome,
    ClusterStatus,
    Edges,
    JobResult,
    JobSpec,
    JobStatus,
    WriteResult,
    begin_write,
    decide_cluster,
    end_write,
    note_write,
    protected_fingerprints,
    record_job,
    resolve_protected,
    verify_cluster,
)
from fleet.jobs.runs import Environment
from fleet.plan.actions import Action
from fleet.record.jobstate import JobState, JobStateLost
from workers import runtime as rt
from workers.app import app

log = logging.getLogger("fleet.workers")

#: Seconds one poll task waits on an operation before handing it to the next poll task.
POLL_WINDOW = 5.0
#: Seconds between a write's start and its first poll, and between approval checks.
POLL_DELAY = 1.0

_specs: dict[str, JobSpec] = {}
_specs_lock = threading.Lock()


# --- plumbing -------------------------------------------------------------------------------


_edges: tuple[Environment, Edges] | None = None


def _env_edges(meta: dict[str, Any]) -> tuple[Environment, Edges]:
    """The process's environment and edges (built once: the version catalogues and the
    principal are shared), with this job's operation timeout."""
    global _edges
    with _specs_lock:
        if _edges is None:
            run = rt.runtime()
            env = Environment(run.settings, run.session, run.inventory, run.history)
            _edges = (env, make_edges(env))
        env, edges = _edges
    timeout = float(meta.get("operationTimeout") or 1800.0)
    return env, dataclasses.replace(edges, operation_timeout=timeout)


def _edges_for(meta: dict[str, Any]) -> Edges:
    return _env_edges(meta)[1]


def _spec(job_id: str, meta: dict[str, Any], edges: Edges) -> JobSpec:
    """The job as recorded in history (cached per worker: it does not change while it runs)."""
    with _specs_lock:
        found = _specs.get(job_id)
    if found is not None:
        return found
    policy_set = policy_set_of(meta["policies"])
    spec = load_spec(edges.history, job_id, policy_set, edges.fingerprint_key)
    with _specs_lock:
        if len(_specs) > 32:
            _specs.clear()
        _specs[job_id] = spec
    return spec


def _waves(spec: JobSpec) -> list[Any]:
    return [w for w in spec.waves if w.clusters]


def _outcome_json(o: ClusterOutcome) -> dict[str, Any]:
    """A cluster's outcome as Redis keeps it between tasks (actions hold secret references
    only; errors are ARM's code and bounded message)."""
    data = o.to_json()
    data["errors"] = o.errors
    data["applied"] = [a.model_dump(mode="json", by_alias=True) for a in o.applied]
    data["writeResults"] = [
        {
            "action": w.action.model_dump(mode="json", by_alias=True),
            "outcome": w.outcome,
            "writeId": w.write_id,
            "error": dataclasses.asdict(w.error) if w.error else None,
            "correlationId": w.correlation_id,
        }
        for w in o.writes
    ]
    return data


def _outcome_of(data: dict[str, Any]) -> ClusterOutcome:
    o = ClusterOutcome(
        data["id"],
        data["name"],
        data.get("wave") or "",
        ClusterStatus(data["status"]),
        data.get("reason"),
        data.get("category"),
    )
    o.errors = list(data.get("errors") or [])
    o.applied = [Action.model_validate(a) for a in data.get("applied") or []]
    o.writes = [
        WriteResult(
            Action.model_validate(w["action"]),
            w["outcome"],
            w.get("writeId"),
            ArmFailure(**w["error"]) if w.get("error") else None,
            w.get("correlationId"),
        )
        for w in data.get("writeResults") or []
    ]
    return o


def _store(edges: Edges, spec: JobSpec, o: ClusterOutcome) -> None:
    edges.history.update_job_cluster(
        spec.id,
        o.cluster_id,
        status=o.status.value,
        reason=o.reason,
        outcome={"category": o.category, "errors": o.errors},
    )


def _stopping(jobs: JobState, job_id: str, edges: Edges) -> str | None:
    """Why the job must not start new work, if it must not."""
    meta = jobs.meta(job_id)
    if meta.get("stopReason"):
        return str(meta["stopReason"])
    if jobs.cancelled(job_id) or edges.history.cancel_requested(job_id):
        return "cancelled"
    if _kill_switch(edges):
        return "kill switch engaged"
    return None


def _kill_switch(edges: Edges) -> bool:
    try:
        from fleet.jobs import killswitch
    except ImportError:  # an installation without the kill switch module
        return False
    return bool(
        killswitch.engaged(history=edges.history, redis_url=rt.runtime().settings.redis_url)
    )


def _stop(jobs: JobState, job_id: str, reason: str) -> None:
    if not jobs.meta(job_id).get("stopReason"):
        jobs.set_meta(job_id, stopReason=reason)


# --- the job --------------------------------------------------------------------------------


@app.task(name="fleet.remediate.start", bind=True)  # type: ignore[untyped-decorator]
def remediate_start(self: Any, job_id: str) -> None:
    """Prepare the job on this worker (plan, guards, waves), record it, start wave 1."""
    jobs = rt.runtime().jobs
    try:
        meta = jobs.meta(job_id)
    except JobStateLost:
        log.error("remediation %s: no job state", job_id, extra={"job": job_id})
        return
    if meta.get("status") not in ("queued",):
        return  # a redelivered start: the job was prepared already
    env, edges = _env_edges(meta)
    policy_set = policy_set_of(meta["policies"])
    mode = meta.get("mode") or "live"
    try:
        if mode == "plan":
            spec = prepare_from_plan(
                env,
                edges,
                policy_set,
                meta["planDocument"],
                policy=meta.get("policy"),
                max_clusters=meta.get("maxClusters"),
                policy_paths=meta.get("policyPaths") or [],
                plan_file=meta.get("planFile"),
            )
        elif mode == "retry":
            spec = prepare_retry(
                env,
                edges,
                policy_set,
                meta["retryOf"],
                max_clusters=meta.get("maxClusters"),
                policy_paths=meta.get("policyPaths") or [],
            )
        else:
            spec = prepare_live(
                env,
                policy_set,
                policy=meta.get("policy"),
                max_clusters=meta.get("maxClusters"),
                policy_paths=meta.get("policyPaths") or [],
            )
    except StalePlan as exc:
        jobs.set_meta(job_id, status="failed", error=str(exc), changed=list(exc.changed))
        return
    except PrepareError as exc:
        jobs.set_meta(job_id, status="failed", error=str(exc))
        return
    spec.id = job_id
    record_job(edges.history, spec, principal=edges.principal)
    edges.history.update_job(job_id, status=JobStatus.RUNNING.value)
    waves = _waves(spec)
    jobs.set_meta(
        job_id,
        status="running",
        toWrite=len(spec.tasks),
        compliant=spec.compliant,
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
    remediate_wave.delay(job_id, 0)


@app.task(name="fleet.remediate.wave", bind=True)  # type: ignore[untyped-decorator]
def remediate_wave(self: Any, job_id: str, index: int) -> None:
    """Start a wave (after its approval, when it needs one), or finish the job."""
    jobs = rt.runtime().jobs
    if jobs.redis.exists(jobs.key(job_id, f"w{index}:done")):
        return  # a late duplicate of a wave that has ended
    meta = jobs.meta(job_id)
    edges = _edges_for(meta)
    spec = _spec(job_id, meta, edges)
    waves = _waves(spec)
    reason = _stopping(jobs, job_id, edges)
    if reason is not None:
        _stop(jobs, job_id, reason)
    if reason is not None or index >= len(waves):
        _finish(job_id)
        return
    wave = waves[index]
    if wave.approval and not edges.history.approved(job_id, wave.name):
        since = float(meta.get("waitingSince") or 0) or time.time()
        if not meta.get("waitingSince"):
            jobs.set_meta(job_id, status="awaiting-approval", waitingSince=since)
            edges.history.update_job(
                job_id,
                status=JobStatus.AWAITING_APPROVAL.value,
                summary={"progress": {"waitingFor": wave.name, "wave": wave.name}},
            )
        if time.time() - since > float(meta.get("approvalTimeout") or 3600.0):
            _stop(jobs, job_id, f"approval of wave {wave.name!r} timed out")
            _finish(job_id)
            return
        remediate_wave.apply_async((job_id, index), countdown=POLL_DELAY)
        return
    jobs.set_meta(job_id, status="running", waitingSince=0, wave=index)
    edges.history.update_job(
        job_id, status=JobStatus.RUNNING.value, summary={"progress": {"wave": wave.name}}
    )
    jobs.redis.hset(jobs.key(job_id, "counts"), f"w{index}:total", len(wave.clusters))
    for cluster_id in wave.clusters:
        remediate_cluster.delay(job_id, index, key(cluster_id))


@app.task(name="fleet.remediate.cluster", bind=True)  # type: ignore[untyped-decorator]
def remediate_cluster(self: Any, job_id: str, index: int, cluster: str) -> None:
    """Re-read, re-judge and start writing one cluster."""
    run = rt.runtime()
    jobs = run.jobs
    meta = jobs.meta(job_id)
    edges = _edges_for(meta)
    spec = _spec(job_id, meta, edges)
    task = spec.tasks[cluster]
    stored = jobs.redis.hget(jobs.key(job_id, "written"), cluster)
    if stored is not None:
        # A redelivered message: the cluster is written, but the copy that wrote it may have
        # died before counting it; counting again is harmless (``_written`` is idempotent).
        _written(job_id, index, _outcome_of(json.loads(stored)))
        return
    if jobs.redis.hexists(jobs.key(job_id, "steps"), cluster):
        return  # a redelivered message: its write is under way, in the hands of poll tasks
    # One copy at a time: a wave started twice (two verifications finishing together both
    # start the next wave) sends each cluster twice. The claim outlives a dead worker only
    # as long as Celery takes to redeliver its message, so a killed copy is not waited on.
    claim_ttl = max(5, run.settings.visibility_timeout)
    if not jobs.redis.set(jobs.key(job_id, f"claim:{cluster}"), "1", nx=True, ex=claim_ttl):
        remediate_cluster.apply_async((job_id, index, cluster), countdown=claim_ttl // 2)
        return
    reason = _stopping(jobs, job_id, edges)
    if reason is not None:
        _written(
            job_id,
            index,
            ClusterOutcome(
                task.id, task.facts.name, task.wave, ClusterStatus.NOT_STARTED, reason, "stopped"
            ),
        )
        return
    lock_ttl = int(edges.operation_timeout) + 600
    if not jobs.lock_cluster(cluster, job_id, ttl_seconds=lock_ttl):
        holder = jobs.cluster_lock_holder(cluster)
        _written(
            job_id,
            index,
            ClusterOutcome(
                task.id,
                task.facts.name,
                task.wave,
                ClusterStatus.RETRY,
                f"another job ({holder}) is writing this cluster",
                "locked",
            ),
        )
        return
    try:
        outcome, actions, values = decide_cluster(edges, spec, task)
    except Exception as exc:  # one cluster's bug must not sink the job
        log.exception("cluster %s", cluster, extra={"job": job_id, "cluster": cluster})
        outcome = ClusterOutcome(
            task.id,
            task.facts.name,
            task.wave,
            ClusterStatus.FAILED,
            f"internal error: {exc}",
            "error",
        )
        actions = []
    if not actions:
        _written(job_id, index, outcome)
        return
    state = {
        "actions": [a.model_dump(mode="json", by_alias=True) for a in actions],
        "step": 0,
        "outcome": _outcome_json(outcome),
    }
    _begin(job_id, index, cluster, state, values[id(actions[0])])


def _begin(
    job_id: str, index: int, cluster: str, state: dict[str, Any], values: dict[str, str]
) -> None:
    """Send action ``state['step']`` and hand its operation to a poll task."""
    jobs = rt.runtime().jobs
    meta = jobs.meta(job_id)
    edges = _edges_for(meta)
    spec = _spec(job_id, meta, edges)
    task = spec.tasks[cluster]
    action = Action.model_validate(state["actions"][state["step"]])
    write_id, started = begin_write(edges, spec, task, action, values)
    state.update(
        writeId=write_id,
        token=started.continuation_token,
        fingerprints=protected_fingerprints(edges, values),
        began=time.time(),
    )
    if started.failed is not None or started.poller is None or not started.continuation_token:
        # Nothing to poll later (refused at once, or no token to resume from): end it here.
        _end(job_id, index, cluster, state, apply.finish(started, timeout=edges.operation_timeout))
        return
    jobs.redis.hset(jobs.key(job_id, "steps"), cluster, json.dumps(state))
    remediate_poll.apply_async((job_id, index, cluster), countdown=POLL_DELAY)


@app.task(name="fleet.remediate.poll", bind=True)  # type: ignore[untyped-decorator]
def remediate_poll(self: Any, job_id: str, index: int, cluster: str) -> None:
    """Poll a cluster's running operation for a few seconds; come back later if it runs on."""
    jobs = rt.runtime().jobs
    # One poll of a cluster at a time: a resumed job (``remediate_resume``) may start a second
    # chain of polls next to a live one. A claim left by a killed worker expires on its own.
    claim = jobs.key(job_id, f"polling:{cluster}")
    if not jobs.redis.set(claim, "1", nx=True, ex=int(POLL_WINDOW) + 30):
        remediate_poll.apply_async((job_id, index, cluster), countdown=POLL_WINDOW)
        return
    try:
        _poll(job_id, index, cluster)
    finally:
        jobs.redis.delete(claim)


def _poll(job_id: str, index: int, cluster: str) -> None:
    jobs = rt.runtime().jobs
    raw = jobs.redis.hget(jobs.key(job_id, "steps"), cluster)
    if raw is None:
        return  # finished by an earlier (redelivered) poll
    state = json.loads(raw)
    meta = jobs.meta(job_id)
    edges = _edges_for(meta)
    action = Action.model_validate(state["actions"][state["step"]])
    started = apply.resume(edges.session, action, state["token"])
    done = apply.finish(started, timeout=POLL_WINDOW)
    still_running = (
        not done.succeeded and done.error is not None and done.error.code == "OperationTimeout"
    )
    if still_running and time.time() - float(state["began"]) < edges.operation_timeout:
        remediate_poll.apply_async((job_id, index, cluster), countdown=POLL_DELAY)
        return
    if still_running:
        done.error = ArmFailure(
            None, "OperationTimeout", f"still running after {edges.operation_timeout:.0f}s", True
        )
    _end(job_id, index, cluster, state, done)


def _end(job_id: str, index: int, cluster: str, state: dict[str, Any], done: apply.Outcome) -> None:
    """Record a finished write; send the cluster's next action, or count the cluster."""
    jobs = rt.runtime().jobs
    meta = jobs.meta(job_id)
    edges = _edges_for(meta)
    spec = _spec(job_id, meta, edges)
    action = Action.model_validate(state["actions"][state["step"]])
    write = end_write(
        edges, spec, action, int(state["writeId"]), done, state.get("fingerprints") or {}
    )
    outcome = _outcome_of(state["outcome"])
    ok = note_write(outcome, write)
    state["outcome"] = _outcome_json(outcome)
    if ok and state["step"] + 1 < len(state["actions"]):
        state["step"] += 1
        following = Action.model_validate(state["actions"][state["step"]])
        # Protected values are read again at this moment, never carried in Redis.
        _begin(job_id, index, cluster, state, resolve_protected(spec.policy_set, following))
        return
    # Counted before the step state goes: a poll redelivered after this worker died in
    # between finds the state and counts the cluster (once: ``_written`` is idempotent).
    _written(job_id, index, outcome)
    jobs.redis.hdel(jobs.key(job_id, "steps"), cluster)


def _written(job_id: str, index: int, outcome: ClusterOutcome) -> None:
    """A cluster of wave ``index`` is written (or will not be): count it once.

    Every step is idempotent so that a task redelivered after its worker died half-way
    (between any two of them) finishes the job of the first copy: the first outcome stored
    wins, the final record is stored once, and the wave counts members of a set, not
    increments."""
    run = rt.runtime()
    jobs = run.jobs
    cluster = key(outcome.cluster_id)
    if not jobs.redis.hsetnx(
        jobs.key(job_id, "written"), cluster, json.dumps(_outcome_json(outcome))
    ):
        outcome = _outcome_of(json.loads(jobs.redis.hget(jobs.key(job_id, "written"), cluster)))
    meta = jobs.meta(job_id)
    edges = _edges_for(meta)
    spec = _spec(job_id, meta, edges)
    if outcome.status is not ClusterStatus.APPLIED:
        _final(job_id, spec, edges, outcome)
    total = int(jobs.counts(job_id).get(f"w{index}:total", 0))
    if jobs.join(job_id, f"w{index}:writtenSet", cluster) >= total:
        remediate_wave_written.delay(job_id, index)  # guarded: it runs its work once


def _final(job_id: str, spec: JobSpec, edges: Edges, outcome: ClusterOutcome) -> None:
    jobs = rt.runtime().jobs
    if jobs.record(
        job_id,
        key(outcome.cluster_id),
        _outcome_json(outcome),
        counter=f"status:{outcome.status.value}",
    ):
        _store(edges, spec, outcome)
        jobs.unlock_cluster(key(outcome.cluster_id), job_id)
        if outcome.status is ClusterStatus.FAILED:
            failures = jobs.incr(job_id, "failures")
            budget = spec.choice.rollout.failure_budget
            if budget_exceeded(budget, failures, len(spec.tasks)):
                _stop(
                    jobs,
                    job_id,
                    f"failure budget exceeded: {failures} failed, budget "
                    f"{describe_budget(budget, len(spec.tasks))}",
                )


@app.task(name="fleet.remediate.wave_written", bind=True)  # type: ignore[untyped-decorator]
def remediate_wave_written(self: Any, job_id: str, index: int) -> None:
    """Every cluster of the wave is written: soak, then verify the written ones."""
    jobs = rt.runtime().jobs
    dispatched = jobs.key(job_id, f"w{index}:verifyDispatched")
    if jobs.redis.exists(dispatched):
        return  # a duplicate: the verification of this wave is under way
    meta = jobs.meta(job_id)
    edges = _edges_for(meta)
    spec = _spec(job_id, meta, edges)
    waves = _waves(spec)
    members = {key(c) for c in waves[index].clusters}
    applied = [
        k
        for k, v in jobs.redis.hgetall(jobs.key(job_id, "written")).items()
        if k in members and json.loads(v)["status"] == ClusterStatus.APPLIED.value
    ]
    jobs.redis.hset(jobs.key(job_id, "counts"), f"w{index}:toVerify", len(applied))
    if not applied:
        _wave_done(job_id, index)
        jobs.redis.set(dispatched, "1", ex=jobs.ttl)
        return
    last = index == len(waves) - 1
    soak = 0 if last or meta.get("stopReason") else spec.choice.rollout.soak_seconds
    # Marked dispatched only after sending: a copy redelivered because this one died half-way
    # sends them again (verification is idempotent: the first result stored wins).
    for cluster in applied:
        remediate_verify.apply_async((job_id, index, cluster), countdown=soak)
    jobs.redis.set(dispatched, "1", ex=jobs.ttl)


@app.task(name="fleet.remediate.verify", bind=True)  # type: ignore[untyped-decorator]
def remediate_verify(self: Any, job_id: str, index: int, cluster: str) -> None:
    """Read a written cluster again: fixed, or failed with the reasons."""
    jobs = rt.runtime().jobs
    meta = jobs.meta(job_id)
    if not jobs.has_result(job_id, cluster):
        _verify_once(job_id, meta, cluster)
    # Counted by set membership, so a redelivered copy (the first died after storing the
    # result) still completes the wave, and never counts a cluster twice.
    verified = jobs.join(job_id, f"w{index}:verifiedSet", cluster)
    if verified >= int(jobs.counts(job_id).get(f"w{index}:toVerify", 0)):
        _wave_done(job_id, index)


def _wave_done(job_id: str, index: int) -> None:
    """Start the wave after ``index``. Sent first and marked after: a copy that dies in
    between is redelivered and sends it again, and a second start is harmless (a wave's
    clusters are claimed one copy at a time and counted once)."""
    jobs = rt.runtime().jobs
    done = jobs.key(job_id, f"w{index}:done")
    if not jobs.redis.exists(done):
        remediate_wave.delay(job_id, index + 1)
        jobs.redis.set(done, "1", ex=jobs.ttl)


def _verify_once(job_id: str, meta: dict[str, Any], cluster: str) -> None:
    jobs = rt.runtime().jobs
    edges = _edges_for(meta)
    spec = _spec(job_id, meta, edges)
    raw = jobs.redis.hget(jobs.key(job_id, "written"), cluster)
    outcome = _outcome_of(json.loads(raw or "{}"))
    try:
        outcome = verify_cluster(edges, spec, spec.tasks[cluster], outcome)
    except Exception as exc:
        log.exception("verify %s", cluster, extra={"job": job_id, "cluster": cluster})
        outcome.status, outcome.reason, outcome.category = (
            ClusterStatus.FAILED,
            f"internal error: {exc}",
            "error",
        )
    _final(job_id, spec, edges, outcome)


@app.task(name="fleet.remediate.resume", bind=True)  # type: ignore[untyped-decorator]
def remediate_resume(self: Any, job_id: str) -> int:
    """Send again what a stalled job waits for; returns how many messages were sent.

    Celery's Redis transport can lose a message outright when its worker is killed: BRPOP
    has taken it off the queue before the worker records it as unacknowledged, so no
    visibility timeout brings it back. ``follow`` (the CLI) and the beat's watchdog call this
    when a job makes no progress for ``FLEET_STALL_SECONDS``. Everything it sends is
    idempotent: written clusters are not written again, a write under way is only polled
    (one poll at a time), a verified cluster is only counted."""
    jobs = rt.runtime().jobs
    meta = jobs.meta(job_id)
    status = meta.get("status")
    if status == "queued":
        remediate_start.delay(job_id)
        return 1
    index = int(meta.get("wave") or 0)
    if status == "awaiting-approval":
        remediate_wave.delay(job_id, index)  # its approval poll was lost
        return 1
    if status != "running":
        return 0
    edges = _edges_for(meta)
    waves = _waves(_spec(job_id, meta, edges))
    if index >= len(waves) or jobs.redis.exists(jobs.key(job_id, f"w{index}:done")):
        remediate_wave.delay(job_id, index + 1)  # the next wave's start (or the close) was lost
        return 1
    counts = jobs.counts(job_id)
    if f"w{index}:total" not in counts:
        remediate_wave.delay(job_id, index)
        return 1
    members = [key(c) for c in waves[index].clusters]
    written = jobs.redis.hgetall(jobs.key(job_id, "written"))
    steps = set(jobs.redis.hkeys(jobs.key(job_id, "steps")))
    sent = 0
    for cluster in members:
        if cluster in steps:
            remediate_poll.delay(job_id, index, cluster)
            sent += 1
        elif cluster not in written:
            remediate_cluster.delay(job_id, index, cluster)
            sent += 1
    if sent:
        return sent
    if not jobs.redis.exists(jobs.key(job_id, f"w{index}:verifyDispatched")):
        remediate_wave_written.delay(job_id, index)
        return 1
    verified = set(jobs.redis.smembers(jobs.key(job_id, f"w{index}:verifiedSet")))
    for cluster in members:
        applied = json.loads(written[cluster])["status"] == ClusterStatus.APPLIED.value
        if applied and cluster not in verified:
            remediate_verify.delay(job_id, index, cluster)
            sent += 1
    if not sent:
        _wave_done(job_id, index)  # every cluster is counted: only the next step was lost
        return 1
    return sent


def _finish(job_id: str) -> None:
    """Close the job: clusters never reached are not-started; status and summary recorded."""
    jobs = rt.runtime().jobs
    meta = jobs.meta(job_id)
    if meta.get("status") == "complete":
        return  # closed already. Not guarded by a flag set on entry: a copy redelivered
        # because this one died half-way must still close the job (every step below repeats
        # harmlessly).
    edges = _edges_for(meta)
    spec = _spec(job_id, meta, edges)
    stop = meta.get("stopReason") or None
    outcomes: dict[str, ClusterOutcome] = {key(o.cluster_id): o for o in spec.outcomes}
    stored = dict(jobs.results(job_id))
    # A worker killed between storing a cluster's outcome in Redis and in the history (or
    # before releasing its lock) leaves both behind: Redis holds the truth, so settle them.
    unsettled = {
        key(r["clusterId"])
        for r in edges.history.job_clusters(job_id, statuses=("pending", "applied"))
    }
    jobs.unlock_clusters(spec.tasks, job_id)
    for cluster, task in spec.tasks.items():
        if cluster in stored:
            outcomes[cluster] = _outcome_of(stored[cluster])
            if cluster in unsettled:
                _store(edges, spec, outcomes[cluster])
            continue
        o = ClusterOutcome(
            task.id,
            task.facts.name,
            task.wave,
            ClusterStatus.NOT_STARTED,
            stop or "the job stopped",
            "stopped",
        )
        outcomes[cluster] = o
        _store(edges, spec, o)
    spec.compliant = int(meta.get("compliant") or 0)  # not part of the recorded job
    result = JobResult(spec, JobStatus.RUNNING, outcomes, principal=edges.principal)
    result.started_at = datetime.fromisoformat(
        str(meta.get("startedAt") or datetime.now(UTC).isoformat())
    )
    counts = result.counts()
    if stop is None:
        done = counts["fixed"] == len(spec.tasks) and not counts["failed"]
        status = JobStatus.SUCCEEDED if done else JobStatus.COMPLETED
    elif stop == "cancelled":
        status = JobStatus.CANCELLED
    else:
        status = JobStatus.STOPPED
    result.status, result.stop_reason = status, stop
    result.finished_at = datetime.now(UTC)
    summary = result.report(clusters=False)
    summary["job"]["engine"] = "celery"
    edges.history.update_job(job_id, status=status.value, counters=counts, summary=summary)
    retry = [o.cluster_id for o in outcomes.values() if o.status in RETRY_STATUSES]
    jobs.set_meta(
        job_id,
        status="complete",
        jobStatus=status.value,
        summary=summary,
        retry=retry,
        finishedAt=datetime.now(UTC).isoformat(),
    )
    log.info("remediation %s finished %s: %s", job_id, status.value, counts, extra={"job": job_id})

"""Celery tasks of a sweep: start (discover and fan out), judge (a batch of clusters), finalize.

No chord: ``start`` stores the targets in the job's Redis hash and sends ``judge`` tasks that
carry only the job id and cluster keys; each ``judge`` stores its outcomes once (HSETNX) and
the task that completes the job — decided atomically in Redis — sends ``finalize``, which
records the sweep in the history database. Every step is idempotent, so a message redelivered
after a worker died does no harm.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from fleet.azure.inventory import provider_registrations
from fleet.core.clusters import ClusterFacts
from fleet.core.errors import JobStateLost
from fleet.jobs.distributed import policy_set_of
from fleet.jobs.work import Target, discover, judge_cluster, scope
from fleet.notify import announce
from fleet.report.model import SummaryBuilder, SweepInfo
from fleet.select import selection
from workers import runtime as rt
from workers.app import app
from workers.metrics import job_progress, task_outcomes

log = logging.getLogger("fleet.workers")


_cancel_cache: dict[str, tuple[float, bool]] = {}


def _cancelled(job_id: str, *, fresh: bool = False) -> bool:
    """Cancelled from any machine: the Redis flag, `fleet jobs cancel` (history database) or
    the kill switch. Cached for a second so that a batch does not query for every cluster."""
    now = time.monotonic()
    hit = _cancel_cache.get(job_id)
    if hit is not None and not fresh and now - hit[0] < 1.0:
        return hit[1]
    run = rt.runtime()
    value = run.jobs.cancelled(job_id) or run.history.cancel_requested(job_id) or _kill_switch()
    if len(_cancel_cache) > 1000:
        _cancel_cache.clear()
    _cancel_cache[job_id] = (now, value)
    return value


def _kill_switch() -> bool:
    try:
        from fleet.jobs import killswitch
    except ImportError:  # an installation without the kill switch module
        return False
    run = rt.runtime()
    return bool(killswitch.engaged(history=run.history, redis_url=run.settings.redis_url))


def _now(meta: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(meta["now"]))


@app.task(name="fleet.sweep.start", bind=True)  # type: ignore[untyped-decorator]
def sweep_start(self: Any, job_id: str) -> None:
    """Discover the targets of a sweep job and fan out ``judge`` tasks in batches."""
    run = rt.runtime()
    jobs = run.jobs
    try:
        meta = jobs.meta(job_id)
    except JobStateLost:
        log.error("sweep %s: no job state; nothing to do", job_id, extra={"job": job_id})
        return
    if _cancelled(job_id):
        jobs.discovered(job_id, 0)
        if jobs.claim_completion(job_id):
            sweep_finalize.delay(job_id)
        return
    policy_set = policy_set_of(meta["policies"])
    jobs.set_meta(job_id, status="running", startedAt=datetime.now(UTC).isoformat())
    # The durable record: `fleet jobs list|show|cancel` find distributed sweeps there too.
    run.history.create_job(
        kind="sweep",
        job_id=job_id,
        status="running",
        options={"engine": "celery"},
        sweep_id=str(meta["sweepId"]),
        policy_revision=policy_set.revision,
    )
    inventory = run.inventory
    subscriptions = inventory.subscriptions(
        scope(policy_set, meta.get("subscriptions") or run.settings.subscriptions)
    )
    jobs.set_meta(job_id, subscriptions=[s.id for s in subscriptions])
    batch: dict[str, Any] = {}
    total = 0
    size = int(meta.get("batchSize") or run.settings.batch_size)
    # One provider read per subscription: the clusters of one where
    # Microsoft.KubernetesConfiguration is not registered are CLUSTER_INELIGIBLE.
    states = provider_registrations(run.session, [s.id for s in subscriptions])
    for target in discover(
        policy_set, inventory, subscriptions, today=_now(meta).date(), registrations=states
    ):
        if _cancelled(job_id):
            break
        key = target.facts.id.lower()
        batch[key] = target.facts.model_dump(mode="json")
        total += 1
        if len(batch) >= size:
            jobs.add_targets(job_id, batch)  # targets first: a judge task reads them
            sweep_judge.delay(job_id, list(batch))
            batch = {}
    if batch:
        jobs.add_targets(job_id, batch)
        sweep_judge.delay(job_id, list(batch))
    jobs.discovered(job_id, total)
    log.info("sweep %s: %d targets dispatched", job_id, total, extra={"job": job_id})
    if jobs.claim_completion(job_id):  # every judge may already have finished
        sweep_finalize.delay(job_id)


@app.task(name="fleet.sweep.judge", bind=True)  # type: ignore[untyped-decorator]
def sweep_judge(self: Any, job_id: str, keys: list[str]) -> None:
    """Observe and judge a batch of clusters; store each verdict once."""
    run = rt.runtime()
    jobs = run.jobs
    try:
        meta = jobs.meta(job_id)
    except JobStateLost:
        log.error(
            "sweep %s: job state lost; dropping %d clusters",
            job_id,
            len(keys),
            extra={"job": job_id},
        )
        return
    policy_set = policy_set_of(meta["policies"])
    now = _now(meta)
    fingerprints = rt.fingerprints_for(job_id, policy_set)
    targets = jobs.targets(job_id, keys)
    for key in keys:
        if jobs.has_result(job_id, key):
            continue  # a redelivered message: this cluster was judged already
        if _cancelled(job_id):
            jobs.record(job_id, key, {"cancelled": True}, counter="cancelled")
            continue
        data = targets.get(key)
        if data is None:
            log.error("sweep %s: no target %s", job_id, key, extra={"job": job_id, "cluster": key})
            jobs.record(job_id, key, {"lost": True}, counter="lost")
            continue
        facts = ClusterFacts.model_validate(data)
        applicable = selection.applicable(policy_set, facts, today=now.date())
        judgement = judge_cluster(
            run.session,
            Target(facts, tuple(applicable)),
            catalogs=run.catalogs,
            now=now,
            fingerprints=fingerprints,
            should_stop=lambda: _cancelled(job_id),
        )
        verdict = judgement.verdict.to_report()
        if jobs.record(job_id, key, {"verdict": verdict}, counter=f"state:{verdict['state']}"):
            task_outcomes.labels(kind="sweep", outcome=verdict["state"]).inc()
    job_progress.labels(job=job_id).set(jobs.counts(job_id).get("done", 0))
    if jobs.claim_completion(job_id):
        sweep_finalize.delay(job_id)


@app.task(name="fleet.sweep.finalize", bind=True)  # type: ignore[untyped-decorator]
def sweep_finalize(self: Any, job_id: str) -> None:
    """Record the finished sweep in the history database, announce what it found (as the local
    engine's ``run_sweep`` does) and mark the job done."""
    run = rt.runtime()
    jobs = run.jobs
    meta = jobs.meta(job_id)
    counts = jobs.counts(job_id)
    complete = not _cancelled(job_id, fresh=True) and counts.get("lost", 0) == 0
    info = SweepInfo(
        id=str(meta["sweepId"]),
        started_at=_now(meta),
        finished_at=datetime.now(UTC),
        policy_revision=str(meta["policies"]["revision"]),
        engine="celery",
        inventory=run.settings.inventory,
        policies=[d["metadata"]["name"] for d in meta["policies"]["documents"]],
        subscriptions=list(meta.get("subscriptions") or []),
        complete=complete,
        interrupted=not complete,
        targets=max(0, counts.get("total", 0)),
    )
    summary = SummaryBuilder()
    history = run.history
    history.start_sweep(info.to_report())
    batch: list[dict[str, Any]] = []
    for _, outcome in jobs.results(job_id):
        verdict = outcome.get("verdict")
        if verdict is None:
            continue
        summary.add(verdict)
        batch.append(verdict)
        if len(batch) >= 500:
            history.add_clusters(info.id, batch)
            batch = []
    if batch:
        history.add_clusters(info.id, batch)
    built = summary.build()
    history.finish_sweep(info.id, info.to_report(), built)
    run.history.update_job(
        job_id,
        status="completed" if complete else "cancelled",
        counters={k: v for k, v in counts.items() if k in ("total", "done", "cancelled", "lost")},
        summary={"sweep": info.to_report(), "summary": built},
    )
    # Before the job is marked complete, so that a CLI following it returns once delivered.
    announce.sweep_finished(run.settings, history, info.id)
    then = meta.get("then")
    if complete and then and jobs.claim(job_id, "then", ttl=jobs.ttl):
        # The automatic job of a scheduled sweep (remediation.auto), once: a redelivered
        # finalize does not start a second one.
        from fleet.jobs.enforce import submit_after_sweep

        auto_job = submit_after_sweep(run.settings, then)
        jobs.set_meta(job_id, autoJob=auto_job)
    jobs.set_meta(
        job_id,
        status="complete" if complete else "cancelled",
        finishedAt=datetime.now(UTC).isoformat(),
        sweep=info.to_report(),
        summary=built,
    )
    log.info("sweep %s finished: %s", job_id, built["byState"], extra={"job": job_id})

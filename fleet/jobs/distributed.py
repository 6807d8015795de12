"""Submitting to and following the Celery engine (``--engine celery``), from any machine.

The CLI (and the beat's scheduled sweeps) never import the workers: they write the job's state
to Redis (``fleet.record.jobstate``) and send the first task by name through a minimal Celery
client. Following a job means polling its Redis counters; the report is built from the outcomes
the workers stored, with the same report model as the local engine's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from fleet.apply.spec import JobRequest
from fleet.core.errors import JobFailed, JobStateLost
from fleet.jobs.sweep import new_sweep_id
from fleet.policy.loading import PolicySet
from fleet.policy.models import Policy
from fleet.record.jobstate import JobState, new_job_id
from fleet.report.model import SummaryBuilder
from fleet.settings import Settings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_policy_sets: OrderedDict[str, PolicySet] = OrderedDict()


def policies_document(policy_set: PolicySet) -> dict[str, Any]:
    """A policy set as job data: the policies (references only, never secret values), where
    they came from (``fromFile`` references resolve against those directories) and the revision."""
    return {
        "revision": policy_set.revision,
        "documents": [
            p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in policy_set.policies
        ],
        "origins": {name: [file, line] for name, (file, line) in policy_set.origins.items()},
    }


def policy_set_of(document: dict[str, Any]) -> PolicySet:
    """The policy set a job was submitted with (cached per revision; the revision is checked)."""
    revision = str(document["revision"])
    with _lock:
        cached = _policy_sets.get(revision)
        if cached is not None:
            _policy_sets.move_to_end(revision)
            return cached
    policies = [Policy.model_validate(d) for d in document["documents"]]
    origins = {name: (str(v[0]), int(v[1])) for name, v in document.get("origins", {}).items()}
    policy_set = PolicySet.from_policies(policies, origins=origins)
    if policy_set.revision != revision:
        raise ValueError(
            f"policy revision mismatch: job has {revision}, rebuilt {policy_set.revision}"
        )
    with _lock:
        _policy_sets[revision] = policy_set
        while len(_policy_sets) > 16:
            _policy_sets.popitem(last=False)
    return policy_set


def client(settings: Settings) -> Celery:
    """A Celery client that only sends messages (no tasks imported, JSON only)."""
    app = Celery("fleet-client", broker=settings.broker_url)
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True)
    return app


def submit_sweep(
    settings: Settings,
    policy_set: PolicySet,
    *,
    jobs: JobState | None = None,
    app: Celery | None = None,
    then: dict[str, Any] | None = None,
) -> str:
    """Create a sweep job in Redis and send its start task. Returns the job id. ``then``: what
    its finaliser starts once it is recorded complete (``fleet.jobs.enforce.after_sweep``)."""
    jobs = jobs or JobState(settings.redis_url)
    now = datetime.now(UTC)
    job_id = new_job_id("sweep")
    meta: dict[str, Any] = {
        "policies": policies_document(policy_set),
        "now": now.isoformat(),
        "sweepId": new_sweep_id(now),
        "subscriptions": settings.subscriptions or [],
        "batchSize": settings.batch_size,
    }
    if then is not None:
        meta["then"] = then
    jobs.create(job_id, "sweep", meta)
    (app or client(settings)).send_task("fleet.sweep.start", args=[job_id], queue="fleet.control")
    return job_id


def redispatch(jobs: JobState, job_id: str, app: Celery) -> int:
    """Send again the work of a stalled job (tasks lost with a dead worker); returns how many
    clusters were re-sent. Safe at any time: every step stores its outcome only once."""
    if jobs.meta(job_id).get("kind") == "remediate":
        # A remediation's steps live on the workers (waves, writes, polls, verification):
        # one of them works out what is missing.
        app.send_task("fleet.remediate.resume", args=[job_id], queue="fleet.control")
        return 0
    counts = jobs.counts(job_id)
    if counts.get("discovered") != 1:
        app.send_task("fleet.sweep.start", args=[job_id], queue="fleet.control")
        return -1
    missing = [k for k in jobs.target_keys(job_id) if not jobs.has_result(job_id, k)]
    size = int(jobs.meta(job_id).get("batchSize") or 10)
    for i in range(0, len(missing), size):
        app.send_task(
            "fleet.sweep.judge", args=[job_id, missing[i : i + size]], queue="fleet.reads"
        )
    if not missing and jobs.claim_completion(job_id):
        app.send_task("fleet.sweep.finalize", args=[job_id], queue="fleet.control")
    return len(missing)


def follow(
    jobs: JobState,
    job_id: str,
    *,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    poll: float = 0.5,
    timeout: float | None = None,
    stop: threading.Event | None = None,
    stall_seconds: float | None = None,
    app: Celery | None = None,
) -> dict[str, Any]:
    """Wait for a job to end, reporting its counters; returns its final meta.

    When the job makes no progress for ``stall_seconds`` (a worker died holding its tasks),
    its missing work is sent again (``redispatch``) instead of waiting for Redis's visibility
    timeout. Raises ``JobFailed`` when the job's state disappears (Redis lost it) or it does
    not end in time: a partial result is never passed off as complete.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    missing_since: float | None = None
    last_done, last_change = -1, time.monotonic()
    while True:
        try:
            meta = jobs.meta(job_id)
            counts = jobs.counts(job_id)
            missing_since = None
        except JobStateLost as exc:
            # Tolerate a short gap (a Redis restart in progress), then fail loudly.
            missing_since = missing_since or time.monotonic()
            if time.monotonic() - missing_since > 10:
                raise JobFailed(f"job {job_id}: {exc}") from None
            time.sleep(poll)
            continue
        except Exception as exc:  # Redis unreachable: same patience, then fail
            missing_since = missing_since or time.monotonic()
            if time.monotonic() - missing_since > 30:
                raise JobFailed(f"job {job_id}: Redis unreachable: {exc}") from None
            time.sleep(poll)
            continue
        if on_progress:
            on_progress(counts)
        if meta.get("status") in ("complete", "cancelled", "failed", "stopped"):
            return meta
        if counts.get("done", 0) != last_done:
            last_done, last_change = counts.get("done", 0), time.monotonic()
        elif (
            stall_seconds is not None
            and app is not None
            and time.monotonic() - last_change > stall_seconds
        ):
            resent = redispatch(jobs, job_id, app)
            log.warning(
                "job %s made no progress for %.0fs; re-sent %s", job_id, stall_seconds, resent
            )
            last_change = time.monotonic()
        if stop is not None and stop.is_set():
            jobs.cancel(job_id)
        if deadline is not None and time.monotonic() > deadline:
            raise JobFailed(f"job {job_id} did not finish within {timeout:.0f}s")
        time.sleep(poll)


def sweep_report(jobs: JobState, job_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The sweep report (docs/contracts.md, Compliance vocabulary) of a finished distributed sweep,
    from the stored verdicts."""
    clusters = [o["verdict"] for _, o in jobs.results(job_id) if "verdict" in o]
    clusters.sort(key=lambda c: str(c["id"]).lower())
    summary = SummaryBuilder()
    for c in clusters:
        summary.add(c)
    info = dict(meta.get("sweep") or {})
    info["job"] = job_id
    return {"sweep": info, "summary": summary.build(), "clusters": clusters}


def submit_remediation(
    settings: Settings,
    policy_set: PolicySet,
    request: JobRequest | None = None,
    *,
    jobs: JobState | None = None,
    app: Celery | None = None,
) -> str:
    """Create a remediation job in Redis and send its start task (the job is prepared, planned
    and recorded on a worker, by the same ``fleet.jobs.preparing.prepare`` as a local job).
    Returns the job id, which is also its id in the history."""
    jobs = jobs or JobState(settings.redis_url)
    request = request or JobRequest()
    job_id = new_job_id("remediate")
    jobs.create(
        job_id,
        "remediate",
        {
            "policies": policies_document(policy_set),
            "now": datetime.now(UTC).isoformat(),
            "request": request.to_json(),
        },
    )
    (app or client(settings)).send_task(
        "fleet.remediate.start", args=[job_id], queue="fleet.control"
    )
    return job_id

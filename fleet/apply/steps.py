"""The per-cluster steps of a remediation job, the same on both engines (ARM and the audit trail).

- ``decide_cluster`` re-reads the cluster from ARM and re-judges it right before writing (a
  cluster that went offline, was stopped or is now compliant is left alone; a live job writes
  the fresh plan), and resolves protected settings at this last moment;
- ``begin_write`` records a write in the audit trail, sends it (retrying what failed before ARM
  accepted it) and persists the operation's continuation token, so any process can poll it to
  the end; ``end_write`` records how it ended and the fingerprints of the secrets it applied;
- ``remediate_cluster`` does all of that for one cluster, polling in place (the local engine);
  the Celery engine calls the same pieces from separate tasks;
- ``verify_cluster`` re-reads a written cluster after its wave: *fixed* only when ARM shows what
  was written and the fresh verdict has nothing left to write for the job.

They take everything they need as arguments and keep no state between calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleet.apply import gates, secrets
from fleet.apply.choose import blocker, choose, remaining_problems
from fleet.apply.outcomes import (
    Category,
    ClusterOutcome,
    ClusterStatus,
    WriteOutcome,
    WriteResult,
)
from fleet.apply.spec import ClusterTask, JobSpec, left_alone_record
from fleet.azure import apply, retrying
from fleet.azure.catalogs import CatalogCache
from fleet.azure.clock import Clock, system_now
from fleet.azure.observe import observe
from fleet.azure.session import AzureSession
from fleet.core.duties import Actor
from fleet.core.errors import SecretUnavailable
from fleet.core.ids import key
from fleet.desired.fingerprints import Fingerprints
from fleet.observe.observed import ObservedCluster
from fleet.plan import pipeline
from fleet.plan.actions import Action
from fleet.plan.planning import canonical_json
from fleet.record.audit import body_digest
from fleet.record.events import JOB_START
from fleet.record.history import History
from fleet.select import selection

log = logging.getLogger(__name__)

#: Attempts to *start* a write that failed before ARM accepted it (429, 5xx, reset): PUT and
#: DELETE are idempotent, so sending one again is safe.
START_ATTEMPTS = 3


@dataclass
class Edges:
    """The I/O a per-cluster step needs: ARM, the history database, catalogues, the key."""

    session: AzureSession
    history: History
    catalogs: CatalogCache
    fingerprint_key: bytes
    principal: str
    #: Seconds to poll one long-running operation before recording it as timed out.
    operation_timeout: float = 1800.0
    #: "Now" for judging and for the window gate (``fleet.azure.clock``, ``FLEET_CLOCK``).
    clock: Clock = system_now


@dataclass
class Decision:
    """What to do with a cluster now: its outcome so far, and the actions to send (with their
    protected values, resolved at this moment), or none when the outcome is final."""

    outcome: ClusterOutcome
    actions: list[Action] = field(default_factory=list)
    values: list[secrets.Protected] = field(default_factory=list)


# --- recording a job ------------------------------------------------------------------------


def _request_shape(action: Action) -> dict[str, Any]:
    """The request body as sent, with every protected value replaced by a placeholder."""
    body: dict[str, Any] = json.loads(json.dumps(action.body or {}))
    props = body.setdefault("properties", {})
    for setting in action.protected:
        if setting.startswith("/"):
            node = props
            parts = [p.replace("~1", "/").replace("~0", "~") for p in setting.strip("/").split("/")]
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = "<secret>"
        else:
            props.setdefault("configurationProtectedSettings", {})[setting] = "<secret>"
    return body


def request_digest(action: Action) -> str | None:
    return body_digest(_request_shape(action)) if action.method == "PUT" else None


def job_digest(spec: JobSpec) -> str:
    """sha256 of what the job writes (cluster, action kind, resource, body digest)."""
    items = sorted(
        (
            t.facts.key,
            a.kind.value,
            key(a.resource_id),
            request_digest(a),
            sorted(a.protected.items()),
        )
        for t in spec.tasks.values()
        for a in t.actions
    )
    return "sha256:" + hashlib.sha256(canonical_json(items)).hexdigest()


def record_job(history: History, spec: JobSpec, *, principal: str | None) -> None:
    """Create the job and its clusters in the history database (before the first write)."""
    from fleet.apply.lifecycle import JobStatus

    history.create_job(
        kind="remediation",
        job_id=spec.id,
        status=JobStatus.PENDING.value,
        principal=principal,
        plan_digest=job_digest(spec),
        options=spec.options(),
        sweep_id=spec.sweep_id,
        policy_revision=spec.policy_set.revision,
        now=spec.created,
    )
    rows = [t.record() for t in spec.tasks.values()]
    rows += [left_alone_record(o) for o in spec.outcomes]
    history.add_job_clusters(spec.id, rows)
    history.record_event(
        JOB_START,
        spec.requested_by or Actor("unknown", None, "cli"),
        job_id=spec.id,
        detail={"mode": spec.mode.value, "engine": spec.engine, "clusters": len(spec.tasks)},
    )


def store(history: History, job_id: str, o: ClusterOutcome) -> None:
    """Record where a cluster of a job stands (the one writer of its row's progress)."""
    history.update_job_cluster(job_id, o.cluster_id, **o.record())


def token_is_clean(token: str | None, values: Iterable[str]) -> bool:
    """True when a continuation token holds none of ``values``, also inside its base64 parts
    (azure-core's token carries ARM's *response* base64-encoded; a response never holds a
    secret, and this makes sure of it before the token is stored)."""
    if token is None:
        return True
    texts = [token]
    try:
        decoded = base64.b64decode(token, validate=False).decode("utf-8", "replace")
        texts.append(decoded)
        state = json.loads(decoded)
        content = ((state.get("data") or state).get("response") or {}).get("content")
        if isinstance(content, str):
            texts.append(base64.b64decode(content).decode("utf-8", "replace"))
    except (binascii.Error, ValueError, AttributeError, TypeError):
        pass
    return not any(v and v in t for v in values for t in texts)


# --- judging ----------------------------------------------------------------------------------


def applied_fingerprints(edges: Edges, spec: JobSpec, observed: ObservedCluster) -> Fingerprints:
    ids = [
        str(c.get("id"))
        for c in (*observed.extensions, *observed.flux_configurations)
        if c.get("id")
    ]
    return Fingerprints(
        desired=spec.desired_fingerprints, applied=edges.history.applied_fingerprints(ids)
    )


def judge_fresh(
    edges: Edges,
    spec: JobSpec,
    observed: ObservedCluster,
    fingerprints: Fingerprints,
    now: datetime | None = None,
) -> pipeline.Judgement | None:
    """Judge a fresh observation with the job's policies (None: no policy targets it now)."""
    now = now or edges.clock()
    applicable = selection.applicable(spec.policy_set, observed.facts, today=now.date())
    if not applicable:
        return None
    observed, catalog = edges.catalogs.for_cluster(observed)
    return pipeline.judge(
        observed,
        applicable,
        catalog=catalog,
        now=now,
        fingerprints=fingerprints,
        nudge_stuck_versions=True,
    )


def decide_cluster(edges: Edges, spec: JobSpec, task: ClusterTask) -> Decision:
    """Re-read and re-judge one cluster right before writing it (see the module docstring)."""

    def final(status: ClusterStatus, reason: str, category: Category) -> Decision:
        return Decision(
            ClusterOutcome(task.id, task.facts.name, task.wave, status, reason, category)
        )

    # A write is decided on the cluster's own fresh facts (power state, connectivity), never on
    # a listing that may be older than the job: read the cluster itself too.
    observed = observe(edges.session, task.facts, read_cluster=True)
    fingerprints = applied_fingerprints(edges, spec, observed)
    judgement = judge_fresh(edges, spec, observed, fingerprints)
    if judgement is None:
        return final(
            ClusterStatus.SKIPPED,
            "no policy targets the cluster any more",
            Category.NO_LONGER_TARGETED,
        )
    blocked = blocker(judgement)
    if blocked is not None:
        return final(ClusterStatus.RETRY, blocked[1], blocked[0])
    choice = choose(spec, task, judgement, observed, fingerprints)
    if not choice.actions:
        assert choice.reason is not None and choice.category is not None
        return final(ClusterStatus.SKIPPED, choice.reason, choice.category)
    # Asked again here, not only at preparation: a window may have closed since.
    window = gates.window_of(
        edges.session, spec.policy_set, task.facts, choice.actions, edges.clock()
    )
    if window is not None and not window.open:
        return Decision(gates.deferral(task.id, task.facts.name, task.wave, window))
    vaults = edges.session.vaults()
    try:
        values = [secrets.resolve_protected(spec.policy_set, a, vaults) for a in choice.actions]
    except SecretUnavailable as exc:
        return final(ClusterStatus.FAILED, f"secret unavailable: {exc}", Category.SECRET)
    outcome = ClusterOutcome(task.id, task.facts.name, task.wave, ClusterStatus.APPLIED)
    return Decision(outcome, choice.actions, values)


def next_values(
    edges: Edges, spec: JobSpec, outcome: ClusterOutcome, action: Action
) -> secrets.Protected | None:
    """The protected values of a cluster's next action, read again now (they are never kept
    between tasks); None, with the cluster failed, when a reference cannot be read."""
    try:
        return secrets.resolve_protected(spec.policy_set, action, edges.session.vaults())
    except SecretUnavailable as exc:
        outcome.settle(ClusterStatus.FAILED, f"secret unavailable: {exc}", Category.SECRET)
        return None


# --- writing ---------------------------------------------------------------------------------


def _start(edges: Edges, action: Action, values: dict[str, str]) -> apply.Started:
    """``apply.start`` with a few attempts for failures before ARM accepted the request."""
    started = apply.start(edges.session, action, values)
    if started.failed is not None and retrying.is_auth_expiry(started.failed):
        # azure-core dropped the refused token: this attempt gets a fresh one (once).
        started = apply.start(edges.session, action, values)
    for attempt in range(1, START_ATTEMPTS):
        failed = started.failed
        if failed is None or not failed.retryable:
            break
        pause = failed.retry_after if failed.retry_after is not None else 0.5 * attempt
        log.info(
            "write %s %s: %s; trying again in %.1fs",
            action.kind.value,
            action.resource_id,
            failed,
            pause,
        )
        time.sleep(min(pause, 30.0))
        started = apply.start(edges.session, action, values)
    return started


def begin_write(
    edges: Edges, spec: JobSpec, task: ClusterTask, action: Action, values: secrets.Protected
) -> tuple[int, apply.Started]:
    """Record a write in the audit trail and send it to ARM; persists the operation's
    continuation token so any process can poll it to the end (``end_write``)."""
    history = edges.history
    write_id = history.record_write(
        job_id=spec.id,
        cluster_id=task.id,
        resource_id=action.resource_id,
        action=action.kind.value,
        method=action.method,
        body_digest=request_digest(action),
        principal=edges.principal,
        wave=task.wave or None,
        outcome="started",
    )
    started = _start(edges, action, values.values)
    if started.failed is None:
        token = started.continuation_token
        if not token_is_clean(token, values.values.values()):
            log.warning(
                "continuation token of %s not stored: it echoes a protected value",
                action.resource_id,
            )
            token = None
            started.continuation_token = None
        history.set_write_operation(
            write_id, continuation_token=token, correlation_id=started.correlation_id
        )
    return write_id, started


def protected_fingerprints(edges: Edges, values: secrets.Protected) -> dict[str, str]:
    """Keyed fingerprints of the protected values a write sends, with the Key Vault version of
    each read from a vault (never the values)."""
    return values.fingerprints(edges.fingerprint_key)


def end_write(
    edges: Edges,
    spec: JobSpec,
    action: Action,
    write_id: int,
    done: apply.Outcome,
    fingerprints: Mapping[str, str],
) -> WriteResult:
    """Record how a write ended; on success store the fingerprints of its protected values
    (computed when it was sent, so no process needs the values again)."""
    error = done.error
    if done.succeeded:
        outcome = WriteOutcome.SUCCEEDED
    elif error is not None and error.code == "OperationTimeout":
        outcome = WriteOutcome.TIMEOUT
    else:
        outcome = WriteOutcome.FAILED
    correlation = done.correlation_id or (error.correlation_id if error else None)
    edges.history.finish_write(
        write_id,
        outcome=outcome.value,
        status_code=error.status if error else None,
        error_code=error.code if error else None,
        error_message=error.message if error else None,
        correlation_id=correlation,
    )
    if done.succeeded and fingerprints:
        # What was applied, as keyed fingerprints: the next sweep compares the references'
        # current values with these, so a rotated secret shows as drift.
        edges.history.record_fingerprints(action.resource_id, dict(fingerprints), spec.id)
    return WriteResult(action, outcome, write_id, error, correlation)


def write_action(
    edges: Edges, spec: JobSpec, task: ClusterTask, action: Action, values: secrets.Protected
) -> WriteResult:
    """One audited ARM write: record, start, persist the token, poll to the end, record."""
    write_id, started = begin_write(edges, spec, task, action, values)
    done = apply.finish(started, timeout=edges.operation_timeout)
    return end_write(edges, spec, action, write_id, done, protected_fingerprints(edges, values))


def remediate_cluster(edges: Edges, spec: JobSpec, task: ClusterTask) -> ClusterOutcome:
    """Re-read, re-judge and write one cluster (no verification: that is ``verify_cluster``).

    Never raises for ARM failures; they become a ``failed`` outcome with ARM's reason.
    """
    decision = decide_cluster(edges, spec, task)
    outcome = decision.outcome
    for action, values in zip(decision.actions, decision.values, strict=True):
        if not outcome.add_write(write_action(edges, spec, task, action, values)):
            break
    return outcome


def verify_cluster(
    edges: Edges, spec: JobSpec, task: ClusterTask, outcome: ClusterOutcome
) -> ClusterOutcome:
    """Re-read a written cluster: ``fixed`` when it carries what the job wrote and the fresh
    verdict has nothing left to write for the job, else ``failed`` with the reasons."""
    if outcome.status is not ClusterStatus.APPLIED:
        return outcome
    observed = observe(edges.session, task.facts, read_cluster=True)
    if observed.read_error is not None:
        outcome.settle(
            ClusterStatus.FAILED, f"could not be verified: {observed.read_error}", Category.VERIFY
        )
        return outcome
    fps = applied_fingerprints(edges, spec, observed)
    judgement = judge_fresh(edges, spec, observed, fps)
    problems = remaining_problems(spec, outcome.applied, judgement, observed, fps)
    if problems:
        outcome.settle(ClusterStatus.FAILED, "; ".join(problems[:3]), Category.VERIFY)
    else:
        outcome.settle(ClusterStatus.FIXED, None, None)
    return outcome


# --- a job whose process died ---------------------------------------------------------------


def _action_of(task: ClusterTask | None, write: Mapping[str, Any]) -> Action | None:
    """The task's action a recorded write sent (by kind and resource)."""
    if task is None:
        return None
    for action in task.actions:
        if action.kind.value == write["action"] and key(action.resource_id) == key(
            write["resourceId"]
        ):
            return action
    return None


def finish_orphans(edges: Edges, spec: JobSpec) -> dict[str, list[WriteResult]]:
    """Poll to their end the writes a dead process left running, from their continuation
    tokens, and record how they ended; returns the successful writes per cluster key.

    A write recorded but never accepted (no token: the process died while sending it) is
    closed as ``abandoned``: ARM may or may not have it, so its cluster is read and judged again
    before anything more is written to it.
    """
    done: dict[str, list[WriteResult]] = {}
    for write in edges.history.writes(spec.id):
        cluster = key(write["clusterId"])
        task = spec.tasks.get(cluster)
        action = _action_of(task, write)
        if write["outcome"] == "succeeded" and action is not None:
            done.setdefault(cluster, []).append(
                WriteResult(
                    action, WriteOutcome.SUCCEEDED, write["id"], None, write["correlationId"]
                )
            )
            continue
        if write["outcome"] not in ("started", "running"):
            continue
        token = write.get("continuationToken")
        if action is None or not token:
            edges.history.finish_write(
                write["id"],
                outcome="abandoned",
                error_code="ProcessEnded",
                error_message="the job's process ended before ARM accepted the write",
            )
            continue
        log.info(
            "job %s: polling the orphaned %s of %s", spec.id, action.kind.value, action.resource_id
        )
        outcome = apply.finish(
            apply.resume(edges.session, action, token), timeout=edges.operation_timeout
        )
        # No fingerprints: the values sent then are gone, and today's may differ (a rotation
        # in between). Without a record of what was applied, the next sweep reports the
        # secret as not applied by fleet and a later job sends it again.
        result = end_write(edges, spec, action, write["id"], outcome, {})
        if result.ok:
            done.setdefault(cluster, []).append(result)
    return done

"""The Celery engine's writes: send one, poll its operation when ARM says to, end it.

Split from ``workers.remediation_flow`` (the rest of the job's task bodies), which calls
``begin`` from its ``cluster`` task and registers ``poll`` as the ``fleet.remediate.poll``
task. A write is started ``deferred`` (``fleet.azure.apply``: no azure-core poller thread in
the worker that sent it), and its operation's status URL, ``Retry-After`` and continuation
token go to the cluster's step state in Redis. Each ``poll`` task then reads the status once
(``apply.poll_once``: one GET, no final GET of the resource, which verification reads anyway)
and, while the operation runs, sends the next poll with ARM's ``Retry-After`` as its
countdown, so no task sleeps and an operation costs the polls ARM asked for. A state written
before this change (no status URL) is polled from its continuation token as before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import workers.remediation_flow as flow
from fleet.apply import readcount, secrets, steps
from fleet.apply.outcomes import ClusterOutcome
from fleet.azure import apply
from fleet.core.failures import ArmFailure
from fleet.plan.actions import Action

if TYPE_CHECKING:
    from workers.remediation_flow import Context


def begin(
    ctx: Context,
    job_id: str,
    index: int,
    cluster: str,
    state: dict[str, Any],
    values: secrets.Protected,
) -> None:
    """Send action ``state['step']`` and hand its operation to a poll task."""
    jobs = ctx.jobs
    meta = jobs.meta(job_id)
    edges = ctx.edges(meta)[1]
    spec = ctx.spec(job_id, meta)
    task = spec.tasks[cluster]
    action = Action.model_validate(state["actions"][state["step"]])
    write_id, started = steps.begin_write(edges, spec, task, action, values, deferred=True)
    state.update(
        writeId=write_id,
        token=started.continuation_token,
        fingerprints=steps.protected_fingerprints(edges, values),
        began=ctx.clock(),
        operationUrl=started.operation_url,
        startedAt=started.started_at.isoformat(),
        correlationId=started.correlation_id,
    )
    if started.done is not None:  # finished at once: nothing to poll
        end(ctx, job_id, index, cluster, state, started.done)
        return
    if started.failed is not None or not started.operation_url or not started.continuation_token:
        # Nothing to poll later (refused at once, or no token to resume from): end it here.
        end(ctx, job_id, index, cluster, state, apply.finish(started))
        return
    jobs.set_step(job_id, cluster, state)
    ctx.dispatch.send(flow.POLL, (job_id, index, cluster), countdown=started.retry_after)


def poll(ctx: Context, job_id: str, index: int, cluster: str) -> None:
    """Look at a cluster's running operation once; come back when ARM says to."""
    jobs = ctx.jobs
    # One poll of a cluster at a time: a resumed job may start a second chain of polls next to
    # a live one. A claim left by a killed worker expires on its own.
    name = f"polling:{cluster}"
    if not jobs.claim(job_id, name, ttl=int(flow.POLL_WINDOW) + 30):
        ctx.dispatch.send(flow.POLL, (job_id, index, cluster), countdown=flow.POLL_WINDOW)
        return
    try:
        with readcount.phase("poll"):
            _poll(ctx, job_id, index, cluster)
    finally:
        jobs.release(job_id, name)


def _poll(ctx: Context, job_id: str, index: int, cluster: str) -> None:
    state = ctx.jobs.step(job_id, cluster)
    if state is None:
        return  # finished by an earlier (redelivered) poll
    edges = ctx.edges(ctx.jobs.meta(job_id))[1]
    action = Action.model_validate(state["actions"][state["step"]])
    timed_out = ctx.clock() - float(state["began"]) >= edges.operation_timeout
    url = state.get("operationUrl")
    if url:
        began = state.get("startedAt")
        answer = apply.poll_once(
            edges.session,
            action,
            str(url),
            started_at=datetime.fromisoformat(began) if began else datetime.now(UTC),
            correlation_id=state.get("correlationId"),
        )
        if answer.outcome is None and not timed_out:
            ctx.dispatch.send(flow.POLL, (job_id, index, cluster), countdown=answer.retry_after)
            return
        done = answer.outcome or apply.Outcome(action, False)
    else:  # a write started before deferred polling: resumed from its token for a while
        done = apply.finish(
            apply.resume(edges.session, action, state["token"]), timeout=flow.POLL_WINDOW
        )
        still_running = (
            not done.succeeded and done.error is not None and done.error.code == "OperationTimeout"
        )
        if still_running and not timed_out:
            ctx.dispatch.send(flow.POLL, (job_id, index, cluster), countdown=flow.POLL_DELAY)
            return
        if not still_running:
            end(ctx, job_id, index, cluster, state, done)
            return
    if not done.succeeded and (done.error is None or done.error.code == "OperationTimeout"):
        done.succeeded = False
        done.error = ArmFailure(
            None, "OperationTimeout", f"still running after {edges.operation_timeout:.0f}s", True
        )
    end(ctx, job_id, index, cluster, state, done)


def end(
    ctx: Context,
    job_id: str,
    index: int,
    cluster: str,
    state: dict[str, Any],
    done: apply.Outcome,
) -> None:
    """Record a finished write; send the cluster's next action, or count the cluster."""
    meta = ctx.jobs.meta(job_id)
    edges = ctx.edges(meta)[1]
    spec = ctx.spec(job_id, meta)
    action = Action.model_validate(state["actions"][state["step"]])
    write = steps.end_write(
        edges, spec, action, int(state["writeId"]), done, state.get("fingerprints") or {}
    )
    outcome = ClusterOutcome.from_state(state["outcome"])
    if outcome.add_write(write) and state["step"] + 1 < len(state["actions"]):
        following = Action.model_validate(state["actions"][state["step"] + 1])
        # Protected values are read again at this moment, never carried in Redis; a worker
        # that cannot read them fails the cluster (as the local engine does), never loops.
        values = steps.next_values(edges, spec, outcome, following)
        if values is not None:
            state["step"] += 1
            state["outcome"] = outcome.to_state()
            begin(ctx, job_id, index, cluster, state, values)
            return
    # Counted before the step state goes: a poll redelivered after this worker died in
    # between finds the state and counts the cluster (once: ``_written`` is idempotent).
    flow._written(ctx, job_id, index, outcome)
    ctx.jobs.clear_step(job_id, cluster)

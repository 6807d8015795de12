"""Remediation jobs: the per-cluster steps and the local engine that runs them wave by wave.

A job is prepared once (``fleet.jobs.preparing``: a planning sweep, a saved plan or a previous
job's retry list) into a ``JobSpec``: the clusters to write (``ClusterTask``: facts, the actions,
the wave), the clusters left alone and why, and the rollout. Then the job runs:

- ``remediate_cluster(edges, spec, task)`` re-reads the cluster from ARM and re-judges it
  immediately before writing (a cluster that went offline, was stopped or is now compliant is
  skipped; a live job writes the fresh plan), resolves protected settings at the last moment,
  applies the actions in order through ``fleet.azure.apply`` (start, persist the continuation
  token, poll to the end) and records every write in the audit trail;
- ``verify_cluster(edges, spec, task, outcome)`` re-reads it after its wave: the cluster is
  *fixed* only when the fresh observation carries what the actions asked for and the fresh
  verdict has nothing left to write for the job (``fleet.apply.verify``), not merely because
  the PUT returned;
- ``run_remediation(env, spec, ...)`` is the local engine: waves in order, each with its
  optional approval gate, ``maxConcurrency`` clusters at a time, then the soak, then the
  verification; failures are counted against the failure budget after every cluster and every
  verification, and once it is exceeded nothing more is written. Cancel requests
  (``fleet jobs cancel``) are honoured between clusters and waves.

The two per-cluster steps take everything they need as arguments and keep no state between
calls, so a Celery task can call them one cluster at a time (``fleet.jobs.preparing.load_spec``
rebuilds the spec from the history database).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from fleet.apply import verify
from fleet.apply.waves import RolloutChoice, WavePlan, budget_exceeded, describe_budget
from fleet.azure import apply, retrying
from fleet.azure.errors import ArmFailure
from fleet.azure.observe import observe
from fleet.azure.session import AzureSession
from fleet.core import redact
from fleet.core.clusters import ClusterFacts
from fleet.core.ids import key
from fleet.core.vocabulary import NON_COUNTING, Code
from fleet.desired.fingerprints import Fingerprints, fingerprint
from fleet.jobs import killswitch, secrets
from fleet.jobs.pool import Interrupted, bounded_map
from fleet.jobs.runs import Environment
from fleet.jobs.work import CatalogCache
from fleet.observe.observed import ObservedCluster
from fleet.plan import pipeline
from fleet.plan.actions import Action, ActionKind
from fleet.plan.planning import canonical_json
from fleet.policy.loading import PolicySet
from fleet.policy.models import SecretRef
from fleet.record.audit import body_digest
from fleet.record.history import History
from fleet.select import selection

log = logging.getLogger(__name__)

KIND = "remediation"
#: Seconds between looks at the history database for a cancel request or an approval.
CONTROL_POLL_SECONDS = 0.5
#: Attempts to *start* a write that failed before ARM accepted it (429, 5xx, reset): PUT and
#: DELETE are idempotent, so sending one again is safe.
START_ATTEMPTS = 3
_VERSION_CODES = {
    Code.EXTENSION_VERSION_OUT_OF_WINDOW.value,
    Code.EXTENSION_VERSION_UNSUPPORTED_ARCH.value,
}
_BLOCKERS = {
    Code.CLUSTER_UNREACHABLE: "unreachable",
    Code.CLUSTER_STOPPED: "stopped",
    Code.READ_ERROR: "read-error",
}


class ClusterStatus(StrEnum):
    PENDING = "pending"  # in the job, its wave has not run yet
    APPLIED = "applied"  # written, waiting for the wave's verification
    FIXED = "fixed"  # written and verified
    FAILED = "failed"  # a write or the verification failed (counts against the budget)
    SKIPPED = "skipped"  # deliberately not written (the reason says why); never a failure
    RETRY = "retry"  # unreachable, stopped or unreadable: not written, listed for retry
    NOT_STARTED = "not-started"  # the job stopped (budget, cancel, approval) before it


#: Statuses a later ``fleet remediate --retry JOB`` picks up.
RETRY_STATUSES = frozenset({ClusterStatus.FAILED, ClusterStatus.RETRY, ClusterStatus.NOT_STARTED})


class Mode(StrEnum):
    LIVE = "live"  # write the fresh plan of every cluster
    PLAN = "plan"  # write exactly a saved plan, refusing clusters that changed since
    RETRY = "retry"  # write the stored actions of an earlier job's failed/skipped clusters


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting-approval"
    SUCCEEDED = "succeeded"  # every cluster of the job fixed
    COMPLETED = "completed"  # ran to the end; some clusters failed (within budget) or wait
    STOPPED = "stopped"  # the failure budget was exceeded, or an approval timed out
    CANCELLED = "cancelled"
    FAILED = "failed"  # the job itself broke (an error, not a cluster)


# --- the job's data -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterTask:
    """One cluster a job means to write: its facts, the actions, its wave."""

    facts: ClusterFacts
    actions: tuple[Action, ...] = ()
    wave: str = ""
    #: The saved plan's digest of the observed state (plan mode only).
    observed_digest: str = ""

    @property
    def id(self) -> str:
        return self.facts.id

    def record(self) -> dict[str, Any]:
        """The ``job_clusters`` row of this task (actions hold secret *references* only)."""
        return {
            "clusterId": self.facts.id,
            "name": self.facts.name,
            "wave": self.wave or None,
            "status": ClusterStatus.PENDING.value,
            "facts": self.facts.model_dump(mode="json"),
            "actions": [a.model_dump(mode="json", by_alias=True) for a in self.actions],
            "outcome": {"observedDigest": self.observed_digest} if self.observed_digest else None,
        }


@dataclass
class WriteResult:
    """How one ARM write of a job ended."""

    action: Action
    outcome: str  # succeeded | failed | timeout
    write_id: int | None = None
    error: ArmFailure | None = None
    correlation_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "succeeded"

    def describe(self) -> str:
        text = f"{self.action.kind.value} {verify.label(self.action)}: {self.outcome}"
        if self.error is not None:
            text += f" ({self.error.code}: {self.error.message})"
        return text


@dataclass
class ClusterOutcome:
    """Where one cluster of a job stands (after writing, after verifying, or skipped)."""

    cluster_id: str
    name: str
    wave: str
    status: ClusterStatus
    reason: str | None = None
    #: Why it was skipped, in one word: audit, conflict, flux-v1, unreachable, stopped,
    #: read-error, compliant, stale, immutable, not-writable, no-longer-targeted, ...
    category: str | None = None
    #: Actions written successfully (what verification checks).
    applied: list[Action] = field(default_factory=list)
    writes: list[WriteResult] = field(default_factory=list)
    #: ARM's error codes of failed writes, for the summary.
    errors: list[str] = field(default_factory=list)
    #: For clusters left for retry at preparation: their facts and the actions a retry sends
    #: (planned as if the cluster were reachable), so the retry re-applies this very state.
    facts: ClusterFacts | None = None
    planned: list[Action] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.cluster_id,
            "name": self.name,
            "wave": self.wave or None,
            "status": self.status.value,
            "category": self.category,
            "reason": redact.text(self.reason) if self.reason else None,
            "writes": [
                {
                    "action": w.action.kind.value,
                    "resource": w.action.resource_id,
                    "outcome": w.outcome,
                    "errorCode": w.error.code if w.error else None,
                    "errorMessage": redact.text(w.error.message) if w.error else None,
                    "correlationId": w.correlation_id,
                }
                for w in self.writes
            ],
        }


@dataclass
class JobSpec:
    """Everything a job does, decided before the first write."""

    id: str
    mode: Mode
    policy_set: PolicySet
    choice: RolloutChoice
    waves: list[WavePlan]
    tasks: dict[str, ClusterTask]
    #: Clusters the job leaves alone (skipped or for retry), decided at preparation.
    outcomes: list[ClusterOutcome] = field(default_factory=list)
    #: Targeted clusters with nothing to do.
    compliant: int = 0
    #: ``--policy NAME``: only that policy's resources.
    policy: str | None = None
    #: Fingerprints of the current value of every secret reference (never values).
    desired_fingerprints: dict[str, str | None] = field(default_factory=dict)
    sweep_id: str | None = None
    retry_of: str | None = None
    plan_file: str | None = None
    policy_paths: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def task_of(self, cluster_id: str) -> ClusterTask:
        return self.tasks[key(cluster_id)]

    def options(self) -> dict[str, Any]:
        """The job's ``options`` in the history database: enough to rebuild it for a retry."""
        rollout = self.choice.rollout
        return {
            "mode": self.mode.value,
            "engine": "local",
            "policies": self.policy_paths,
            "policy": self.policy,
            "planFile": self.plan_file,
            "retryOf": self.retry_of,
            "rolloutPolicy": self.choice.policy,
            "rolloutWhy": self.choice.why,
            "rollout": rollout.model_dump(mode="json", by_alias=True, exclude_none=True),
            "waves": [
                {
                    "name": w.name,
                    "clusters": len(w.clusters),
                    "approval": w.approval,
                    "implicit": w.implicit,
                }
                for w in self.waves
            ],
        }

    def digest(self) -> str:
        """sha256 of what the job writes (cluster, action kind, resource, body digest)."""
        items = sorted(
            (
                t.facts.key,
                a.kind.value,
                key(a.resource_id),
                _request_digest(a),
                sorted(a.protected.items()),
            )
            for t in self.tasks.values()
            for a in t.actions
        )
        return "sha256:" + hashlib.sha256(canonical_json(items)).hexdigest()


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


# --- secrets --------------------------------------------------------------------------------


class SecretsUnavailable(RuntimeError):
    """Secret references the job needs cannot be read now (names the references only)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def parse_ref(description: str) -> SecretRef:
    """``env:NAME`` / ``file:PATH`` (``SecretRef.describe()``) back into a reference."""
    scheme, _, rest = description.partition(":")
    if scheme == "env" and rest:
        return SecretRef(from_env=rest)
    if scheme == "file" and rest:
        return SecretRef(from_file=rest)
    raise ValueError(f"not a secret reference: {description!r}")


def resolve_protected(policy_set: PolicySet, action: Action) -> dict[str, str]:
    """The protected values of one action, read now (registered for redaction).

    A ``fromFile`` path is relative to the file of the policy that declares it: the
    action's policies are tried in order.
    """
    values: dict[str, str] = {}
    for setting, description in sorted(action.protected.items()):
        ref = parse_ref(description)
        bases: list[Path | None] = [
            policy_set.base_dir(p) for p in action.policies if p in policy_set.origins
        ] or [None]
        last: secrets.SecretUnavailable | None = None
        for base in bases:
            try:
                values[setting] = secrets.resolve(ref, base)
                break
            except secrets.SecretUnavailable as exc:
                last = exc
        else:
            assert last is not None
            raise last
    return values


def check_secrets(policy_set: PolicySet, tasks: Iterable[ClusterTask]) -> None:
    """Every reference the job will send is readable now; raises ``SecretsUnavailable``."""
    problems: dict[str, str] = {}
    for task in tasks:
        for action in task.actions:
            if not action.protected:
                continue
            try:
                resolve_protected(policy_set, action)
            except secrets.SecretUnavailable as exc:
                problems.setdefault(str(exc), str(exc))
    if problems:
        raise SecretsUnavailable(sorted(problems))


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


def _request_digest(action: Action) -> str | None:
    return body_digest(_request_shape(action)) if action.method == "PUT" else None


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


# --- the per-cluster steps --------------------------------------------------------------------


def judge_fresh(
    edges: Edges,
    spec: JobSpec,
    observed: ObservedCluster,
    fingerprints: Fingerprints,
    now: datetime | None = None,
) -> pipeline.Judgement | None:
    """Judge a fresh observation with the job's policies (None: no policy targets it now)."""
    now = now or datetime.now(UTC)
    applicable = selection.applicable(spec.policy_set, observed.facts, today=now.date())
    if not applicable:
        return None
    catalog = edges.catalogs.get(
        observed.facts.subscription_id, observed.facts.location or "global"
    )
    return pipeline.judge(
        observed,
        applicable,
        catalog=catalog,
        now=now,
        fingerprints=fingerprints,
        nudge_stuck_versions=True,
    )


def blocker(judgement: pipeline.Judgement) -> tuple[str, str] | None:
    """(category, reason) when the cluster cannot take writes now (offline, stopped, unread)."""
    for skip in judgement.plan.skipped:
        for code, category in _BLOCKERS.items():
            if skip.code == code.value:
                return category, skip.reason
    return None


_CATEGORY_RULES = (
    ("policy conflict", "conflict"),
    ("Flux v1", "flux-v1"),
    ("audit mode", "audit"),
    ("create-only", "immutable"),
    ("pinned", "pinned"),
    ("in progress", "in-progress"),
    ("Non-Compliant but the configuration matches", "not-writable"),
    ("not declared by any policy", "unmanaged"),
    ("ARM64", "policy-error"),
)


def skip_category(reason: str) -> str:
    for needle, category in _CATEGORY_RULES:
        if needle in reason:
            return category
    return "not-writable"


def filter_policy(actions: Sequence[Action], policy: str | None) -> tuple[list[Action], str | None]:
    """Only ``policy``'s actions (all when None), and why the cluster must be skipped when a
    kept action depends on one owned by other policies (a Flux v1 migration, a deletion, the
    extension install that a flux configuration PUT would otherwise trigger with defaults)."""
    if policy is None:
        return list(actions), None
    kept = [a for a in actions if policy in a.policies]
    dropped = [a for a in actions if policy not in a.policies]
    if not kept:
        return [], None
    prerequisites = [
        a
        for a in dropped
        if a.kind in (ActionKind.DELETE_FLUX_V1, ActionKind.DELETE_EXTENSION)
        or (a.kind is ActionKind.PUT_EXTENSION and a.change == "+")
        or (
            a.kind is ActionKind.DELETE_FLUX_CONFIG
            and any(key(k.resource_id) == key(a.resource_id) for k in kept)
        )
    ]
    if prerequisites:
        owners = sorted({p for a in prerequisites for p in a.policies})
        kinds = ", ".join(sorted({a.kind.value for a in prerequisites}))
        return [], (
            f"needs {kinds} owned by {', '.join(owners)} first; run without --policy "
            f"or with --policy {owners[0]}"
        )
    return kept, None


def _signature(action: Action) -> tuple[str, str, str, str]:
    return (
        action.kind.value,
        key(action.resource_id),
        action.method,
        canonical_json([action.body, sorted(action.protected.items())]).decode(),
    )


def _still_allowed(action: Action, spec: JobSpec, judgement: pipeline.Judgement) -> str | None:
    """Why a stored action (retry) must not be sent under today's policies, or None."""
    conflicting = {key(c.resource) for c in judgement.desired.conflicts}
    if key(action.resource_id) in conflicting:
        return f"{verify.label(action)} is in a policy conflict now"
    policies = {p.name: p for p in spec.policy_set.policies}
    owners = [
        policies[p] for p in action.policies if p in policies and policies[p].spec.mode == "enforce"
    ]
    if not owners:
        return f"no policy allowing {verify.label(action)} is in enforce mode now"
    flags = [o.spec.remediation for o in owners]
    if action.kind is ActionKind.DELETE_FLUX_V1 and not any(f.migrate_flux_v1 for f in flags):
        return "remediation.migrateFluxV1 is no longer set"
    if action.kind is ActionKind.DELETE_EXTENSION and not any(
        f.recreate_on_immutable_change for f in flags
    ):
        return "remediation.recreateOnImmutableChange is no longer set"
    if action.kind is ActionKind.DELETE_FLUX_CONFIG and not any(
        f.delete_unmanaged or f.recreate_on_immutable_change for f in flags
    ):
        return "neither deleteUnmanaged nor recreateOnImmutableChange is set any more"
    return None


def _is_nudge(action: Action) -> bool:
    return action.kind is ActionKind.PUT_EXTENSION and any(
        r.code in _VERSION_CODES for r in action.reasons
    )


def _version_problem(judgement: pipeline.Judgement, action: Action) -> str | None:
    """A nudged extension still outside its window (a finding an enforce policy owns)."""
    enforce = set(judgement.desired.enforce)
    for f in judgement.verdict.findings:
        if (
            f.code.value in _VERSION_CODES
            and f.severity not in NON_COUNTING
            and f.policy in enforce
            and key(f.resource) == key(action.resource_id)
        ):
            return (
                f"extension still at version {f.actual}, outside the window "
                f"({f.code.value}) after the re-PUT"
            )
    return None


def choose_actions(
    spec: JobSpec,
    task: ClusterTask,
    judgement: pipeline.Judgement,
    observed: ObservedCluster,
    fingerprints: Fingerprints | None = None,
) -> tuple[list[Action], str | None, str | None]:
    """The actions to send now: (actions, skip reason, skip category).

    Live: the fresh plan. Plan: the saved actions, only when the cluster is unchanged since the
    plan and the policies still plan exactly them. Retry: the stored actions still allowed
    and not already in place (a cluster with none stored is planned afresh).
    """
    fresh, why = filter_policy(judgement.plan.actions, spec.policy)
    if spec.mode is Mode.LIVE or (spec.mode is Mode.RETRY and not task.actions):
        if why:
            return [], why, "depends"
        if not fresh:
            reasons = [s.reason for s in judgement.plan.skipped]
            if reasons:
                return [], f"nothing to write now: {reasons[0]}", skip_category(reasons[0])
            return [], "compliant now: nothing to write", "compliant"
        return fresh, None, None
    if spec.mode is Mode.PLAN:
        if judgement.plan.observed_digest != task.observed_digest:
            return [], "the cluster changed since the plan was made: make a new plan", "stale"
        planned = {_signature(a) for a in judgement.plan.actions}
        for action in task.actions:
            if _signature(action) not in planned:
                return (
                    [],
                    (
                        f"the saved plan's {action.kind.value} of {verify.label(action)} is "
                        "not what the policies plan now: make a new plan"
                    ),
                    "stale",
                )
        return list(task.actions), None, None
    # Retry: exactly the stored desired state, re-checked against today's guards.
    todo: list[Action] = []
    for action in task.actions:
        refusal = _still_allowed(action, spec, judgement)
        if refusal is not None:
            return [], refusal, "guard"
        if _is_nudge(action):
            if _version_problem(judgement, action) is not None:
                todo.append(action)
        elif verify.problem(observed, action, fingerprints) is not None:
            todo.append(action)
    if not todo:
        return [], "already in the desired state the job applies", "compliant"
    return todo, None, None


def _applied_fingerprints(edges: Edges, spec: JobSpec, observed: ObservedCluster) -> Fingerprints:
    ids = [
        str(c.get("id"))
        for c in (*observed.extensions, *observed.flux_configurations)
        if c.get("id")
    ]
    return Fingerprints(
        desired=spec.desired_fingerprints, applied=edges.history.applied_fingerprints(ids)
    )


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
    edges: Edges, spec: JobSpec, task: ClusterTask, action: Action, values: dict[str, str]
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
        body_digest=_request_digest(action),
        principal=edges.principal,
        wave=task.wave or None,
        outcome="started",
    )
    started = _start(edges, action, values)
    if started.failed is None:
        token = started.continuation_token
        if not token_is_clean(token, values.values()):
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
    outcome = (
        "succeeded"
        if done.succeeded
        else ("timeout" if error is not None and error.code == "OperationTimeout" else "failed")
    )
    correlation = done.correlation_id or (error.correlation_id if error else None)
    edges.history.finish_write(
        write_id,
        outcome=outcome,
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


def protected_fingerprints(edges: Edges, values: Mapping[str, str]) -> dict[str, str]:
    """Keyed fingerprints of the protected values a write sends (never the values)."""
    return {s: fingerprint(edges.fingerprint_key, v) for s, v in values.items()}


def write_action(
    edges: Edges, spec: JobSpec, task: ClusterTask, action: Action, values: dict[str, str]
) -> WriteResult:
    """One audited ARM write: record, start, persist the token, poll to the end, record."""
    write_id, started = begin_write(edges, spec, task, action, values)
    done = apply.finish(started, timeout=edges.operation_timeout)
    return end_write(edges, spec, action, write_id, done, protected_fingerprints(edges, values))


def decide_cluster(
    edges: Edges, spec: JobSpec, task: ClusterTask
) -> tuple[ClusterOutcome, list[Action], dict[int, dict[str, str]]]:
    """Re-read and re-judge one cluster right before writing it: the actions to write now
    (with their protected values, resolved at this last moment), or a terminal outcome
    (skipped, left for retry, failed) and no actions."""

    def outcome(
        status: ClusterStatus, reason: str | None = None, category: str | None = None
    ) -> ClusterOutcome:
        return ClusterOutcome(task.id, task.facts.name, task.wave, status, reason, category)

    observed = observe(edges.session, task.facts)
    fingerprints = _applied_fingerprints(edges, spec, observed)
    judgement = judge_fresh(edges, spec, observed, fingerprints)
    if judgement is None:
        return (
            outcome(
                ClusterStatus.SKIPPED,
                "no policy targets the cluster any more",
                "no-longer-targeted",
            ),
            [],
            {},
        )
    blocked = blocker(judgement)
    if blocked is not None:
        return outcome(ClusterStatus.RETRY, blocked[1], blocked[0]), [], {}
    actions, why, category = choose_actions(spec, task, judgement, observed, fingerprints)
    if not actions:
        return outcome(ClusterStatus.SKIPPED, why, category), [], {}
    try:
        values = {id(a): resolve_protected(spec.policy_set, a) for a in actions}
    except secrets.SecretUnavailable as exc:
        return outcome(ClusterStatus.FAILED, f"secret unavailable: {exc}", "secret"), [], {}
    return outcome(ClusterStatus.APPLIED), actions, values


def note_write(result: ClusterOutcome, write: WriteResult) -> bool:
    """Add a finished write to a cluster's outcome; False when the cluster must stop there.

    Later actions depend on earlier ones (Flux v1 gone before the extension, the extension
    before its configurations), so a cluster stops at its first failed write.
    """
    result.writes.append(write)
    if not write.ok:
        result.status = ClusterStatus.FAILED
        result.reason = write.describe()
        result.category = "write"
        if write.error is not None:
            result.errors.append(write.error.code)
        return False
    result.applied.append(write.action)
    return True


def remediate_cluster(edges: Edges, spec: JobSpec, task: ClusterTask) -> ClusterOutcome:
    """Re-read, re-judge and write one cluster (no verification: that is ``verify_cluster``).

    Never raises for ARM failures; they become a ``failed`` outcome with ARM's reason.
    """
    result, actions, values = decide_cluster(edges, spec, task)
    for action in actions:
        if not note_write(result, write_action(edges, spec, task, action, values[id(action)])):
            break
    return result


def verify_cluster(
    edges: Edges, spec: JobSpec, task: ClusterTask, outcome: ClusterOutcome
) -> ClusterOutcome:
    """Re-read a written cluster: ``fixed`` when it carries what the job wrote and the fresh
    verdict has nothing left to write for the job, else ``failed`` with the reasons."""
    if outcome.status is not ClusterStatus.APPLIED:
        return outcome
    observed = observe(edges.session, task.facts)
    if observed.read_error is not None:
        outcome.status = ClusterStatus.FAILED
        outcome.reason = f"could not be verified: {observed.read_error}"
        outcome.category = "verify"
        return outcome
    fps = _applied_fingerprints(edges, spec, observed)
    judgement = judge_fresh(edges, spec, observed, fps)
    problems = [why for _, why in verify.unmet(observed, outcome.applied, fps)]
    if judgement is not None:
        for action in outcome.applied:
            if _is_nudge(action):
                version = _version_problem(judgement, action)
                if version is not None:
                    problems.append(version)
        if spec.mode is not Mode.RETRY:
            written = {key(a.resource_id) for a in outcome.applied}
            remaining, _ = filter_policy(judgement.plan.actions, spec.policy)
            for action in remaining:
                if key(action.resource_id) in written and not _is_nudge(action):
                    problems.append(
                        f"{verify.label(action)} still needs {action.kind.value} "
                        f"({', '.join(map(str, action.reasons))})"
                    )
    problems = list(dict.fromkeys(problems))
    if problems:
        outcome.status = ClusterStatus.FAILED
        outcome.reason = "; ".join(problems[:3])
        outcome.category = "verify"
    else:
        outcome.status = ClusterStatus.FIXED
        outcome.reason = None
    return outcome


# --- the local engine ------------------------------------------------------------------------


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


@dataclass
class JobResult:
    """A finished (or stopped) job: status, why it stopped, and every cluster's outcome."""

    spec: JobSpec
    status: JobStatus
    outcomes: dict[str, ClusterOutcome]
    stop_reason: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    wave_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    principal: str | None = None

    def counts(self) -> dict[str, int]:
        c = Counter(o.status.value for o in self.outcomes.values())
        writes = sum(len(o.writes) for o in self.outcomes.values())
        return {
            "toWrite": len(self.spec.tasks),
            "fixed": c["fixed"],
            "failed": c["failed"],
            "skipped": c["skipped"],
            "retry": c["retry"],
            "notStarted": c["not-started"] + c["pending"],
            "compliant": self.spec.compliant,
            "writes": writes,
        }

    def retry_list(self) -> list[str]:
        return sorted(
            (
                o.cluster_id
                for o in self.outcomes.values()
                if o.status in RETRY_STATUSES or o.status is ClusterStatus.PENDING
            ),
            key=str.lower,
        )

    def report(self, *, clusters: bool = True) -> dict[str, Any]:
        """The JSON summary (``fleet remediate -o json``). ``clusters=False`` leaves out the
        per-cluster list (the job's ``summary`` in the history: ``job_clusters`` has them)."""
        rollout = self.spec.choice.rollout
        listed = sorted(
            (o.to_json() for o in self.outcomes.values()), key=lambda c: str(c["id"]).lower()
        )
        out: dict[str, Any] = {
            "job": {
                "id": self.spec.id,
                "kind": KIND,
                "status": self.status.value,
                "mode": self.spec.mode.value,
                "engine": "local",
                "startedAt": self.started_at.isoformat(),
                "finishedAt": self.finished_at.isoformat() if self.finished_at else None,
                "principal": self.principal,
                "policyRevision": self.spec.policy_set.revision,
                "policy": self.spec.policy,
                "sweepId": self.spec.sweep_id,
                "retryOf": self.spec.retry_of,
                "stopReason": self.stop_reason,
                "rollout": {
                    "policy": self.spec.choice.policy,
                    "why": self.spec.choice.why,
                    "failureBudget": describe_budget(rollout.failure_budget, len(self.spec.tasks)),
                    "maxConcurrency": rollout.max_concurrency,
                    "soakSeconds": rollout.soak_seconds,
                },
            },
            "summary": self.counts(),
            "waves": [
                {
                    "name": w.name,
                    "clusters": len(w.clusters),
                    "approval": w.approval,
                    "implicit": w.implicit,
                    **self.wave_counts.get(w.name, {}),
                }
                for w in self.spec.waves
            ],
        }
        if clusters:
            out["clusters"] = listed
            out["retry"] = self.retry_list()
        return out


class _Control:
    """Watches the history database for a cancel request (and ``watch``: the kill switch)
    while the job runs."""

    def __init__(
        self,
        history: History,
        job_id: str,
        cancel: threading.Event,
        watch: Callable[[], bool] | None = None,
    ) -> None:
        self.history, self.job_id, self.cancel = history, job_id, cancel
        self.watch = watch
        self.requested = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-job-control", daemon=True)

    def __enter__(self) -> _Control:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._done.wait(CONTROL_POLL_SECONDS):
            try:
                if self.history.cancel_requested(self.job_id):
                    self.requested = True
                    self.cancel.set()
                    return
                if self.watch is not None and self.watch():
                    return
            except Exception as exc:  # a locked database must not kill the job
                log.debug("cancel check failed: %s", exc)


def record_job(history: History, spec: JobSpec, *, principal: str | None) -> None:
    """Create the job and its clusters in the history database (before the first write)."""
    history.create_job(
        kind=KIND,
        job_id=spec.id,
        status=JobStatus.PENDING.value,
        principal=principal,
        plan_digest=spec.digest(),
        options=spec.options(),
        sweep_id=spec.sweep_id,
        policy_revision=spec.policy_set.revision,
        now=spec.created,
    )
    rows = [t.record() for t in spec.tasks.values()]
    for o in spec.outcomes:
        rows.append(
            {
                "clusterId": o.cluster_id,
                "name": o.name,
                "wave": o.wave or None,
                "status": o.status.value,
                "reason": o.reason,
                "outcome": {"category": o.category},
                "facts": o.facts.model_dump(mode="json") if o.facts is not None else None,
                "actions": [a.model_dump(mode="json", by_alias=True) for a in o.planned],
            }
        )
    history.add_job_clusters(spec.id, rows)


def _store(history: History, spec: JobSpec, o: ClusterOutcome) -> None:
    history.update_job_cluster(
        spec.id,
        o.cluster_id,
        status=o.status.value,
        reason=o.reason,
        outcome={
            "category": o.category,
            "errors": o.errors,
            "writes": [w.write_id for w in o.writes],
        },
    )


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
    ) -> None:
        self.spec, self.edges, self.history = spec, edges, edges.history
        self.progress, self.cancel = progress, cancel
        self.approval_timeout, self.clock = approval_timeout, clock
        self.result = JobResult(spec, JobStatus.RUNNING, {}, principal=edges.principal)
        for o in spec.outcomes:
            self.result.outcomes[key(o.cluster_id)] = o
        for t in spec.tasks.values():
            self.result.outcomes[t.facts.key] = ClusterOutcome(
                t.id, t.facts.name, t.wave, ClusterStatus.PENDING
            )
        rollout = spec.choice.rollout
        self.budget = rollout.failure_budget
        self.total = len(spec.tasks)
        # maxConcurrency is a ceiling; FLEET_CONCURRENCY also sizes the HTTP pool.
        self.concurrency = max(1, min(rollout.max_concurrency, env.settings.concurrency))
        self.failures = 0
        self.stop: str | None = None
        self.status = JobStatus.RUNNING
        #: The kill switch, once it was found engaged (``fleet.jobs.killswitch``).
        self.killed: killswitch.State | None = None

    def kill_switch(self) -> bool:
        """True once the kill switch is engaged; the job is then told to stop (no new
        cluster, no new wave; in-flight clusters finish and are verified)."""
        if self.killed is None:
            found = killswitch.state(self.history)
            if found.engaged:
                self.killed = found
                self.stop = self.stop or f"stopped: {found.describe()}"
                log.warning("job %s: %s", self.spec.id, found.describe())
                self.cancel.set()
        return self.killed is not None

    # -- bookkeeping ---------------------------------------------------------------------

    def update(self, **progress: Any) -> None:
        self.history.update_job(
            self.spec.id,
            status=self.status.value,
            counters=self.result.counts(),
            summary={"progress": progress} if progress else None,
        )

    def count(self, o: ClusterOutcome) -> None:
        self.result.outcomes[key(o.cluster_id)] = o
        if o.status is ClusterStatus.FAILED:
            self.failures += 1
        _store(self.history, self.spec, o)
        self.progress.cluster_done(o)

    def over_budget(self, wave: WavePlan) -> bool:
        if self.stop is None and budget_exceeded(self.budget, self.failures, self.total):
            self.stop = (
                f"failure budget exceeded in wave {wave.name!r}: {self.failures} "
                f"failed, budget {describe_budget(self.budget, self.total)}"
            )
        return self.stop is not None

    # -- a wave ----------------------------------------------------------------------------

    def approve(self, wave: WavePlan) -> bool:
        """Wait for the wave's approval; False when the job must stop instead."""
        if not wave.approval or self.history.approved(self.spec.id, wave.name):
            return True
        self.status = JobStatus.AWAITING_APPROVAL
        self.update(waitingFor=wave.name, wave=wave.name)
        self.progress.phase(wave, f"awaiting approval: fleet jobs approve {self.spec.id}")
        log.info("job %s: wave %s waits for approval", self.spec.id, wave.name)
        deadline = self.clock() + self.approval_timeout
        while not self.history.approved(self.spec.id, wave.name):
            if self.cancel.is_set():
                self.stop = self.stop or "cancelled"
                return False
            if self.clock() >= deadline:
                self.stop = (
                    f"approval of wave {wave.name!r} timed out after {self.approval_timeout:g}s"
                )
                return False
            _wait(self.cancel, CONTROL_POLL_SECONDS)
        self.status = JobStatus.RUNNING
        return True

    def write(self, task: ClusterTask) -> ClusterOutcome:
        try:
            return remediate_cluster(self.edges, self.spec, task)
        except Exception as exc:  # one cluster's bug must not sink the job
            log.exception("cluster %s", task.id)
            return ClusterOutcome(
                task.id,
                task.facts.name,
                task.wave,
                ClusterStatus.FAILED,
                f"internal error: {exc}",
                "error",
            )

    def check(self, o: ClusterOutcome) -> ClusterOutcome:
        try:
            return verify_cluster(self.edges, self.spec, self.spec.task_of(o.cluster_id), o)
        except Exception as exc:
            log.exception("verify %s", o.cluster_id)
            o.status, o.reason, o.category = ClusterStatus.FAILED, f"internal error: {exc}", "error"
            return o

    def apply_wave(self, wave: WavePlan) -> list[ClusterOutcome]:
        """Write the wave's clusters; stop taking new ones on cancel or budget."""
        tasks = [self.spec.task_of(c) for c in wave.clusters]
        stop = threading.Event()
        started: set[str] = set()

        def relay() -> None:
            while not stop.is_set():
                if self.cancel.wait(0.2):
                    stop.set()

        def submitted() -> Iterator[ClusterTask]:
            for t in tasks:
                if self.kill_switch():
                    return
                started.add(t.facts.key)
                yield t

        relay_thread = threading.Thread(target=relay, name="fleet-job-relay", daemon=True)
        relay_thread.start()
        applied: list[ClusterOutcome] = []
        interrupted = Interrupted()
        try:
            for o in bounded_map(
                self.write,
                submitted(),
                concurrency=self.concurrency,
                cancel=stop,
                interrupted=interrupted,
                name="fleet-remediate",
            ):
                self.count(o)
                if o.status is ClusterStatus.APPLIED:
                    applied.append(o)
                if self.over_budget(wave):
                    stop.set()  # in-flight clusters finish; no new one starts
        finally:
            stop.set()
            relay_thread.join(timeout=2)
        if interrupted.happened and self.stop is None:
            self.cancel.set()  # Ctrl-C: bounded_map stopped the wave; the job stops too
        if self.stop is None and self.cancel.is_set():
            self.stop = "cancelled"
        for t in tasks:
            if t.facts.key not in started:
                self.count(
                    ClusterOutcome(
                        t.id,
                        t.facts.name,
                        t.wave,
                        ClusterStatus.NOT_STARTED,
                        self.stop or "the job stopped",
                        "stopped",
                    )
                )
        return applied

    def verify_wave(self, wave: WavePlan, applied: list[ClusterOutcome]) -> None:
        self.progress.phase(wave, "verifying")
        # Verification only reads: it runs to the end even when the job is stopping, so every
        # written cluster gets an honest status.
        never = threading.Event()
        for o in bounded_map(
            self.check, applied, concurrency=self.concurrency, cancel=never, name="fleet-verify"
        ):
            self.count(o)
        self.over_budget(wave)

    def run(self) -> JobResult:
        spec = self.spec
        self.update()
        with_work = [w for w in spec.waves if w.clusters]
        with _Control(self.history, spec.id, self.cancel, self.kill_switch) as control:
            for wave in with_work:
                self.kill_switch()
                if self.stop is None and self.cancel.is_set():
                    self.stop = "cancelled"
                if self.stop is not None or not self.approve(wave):
                    break
                self.update(wave=wave.name)
                self.progress.wave_started(wave, len(wave.clusters))
                self.progress.phase(wave, "writing")
                log.info("job %s: wave %s: %d clusters", spec.id, wave.name, len(wave.clusters))
                applied = self.apply_wave(wave)
                soak = spec.choice.rollout.soak_seconds
                if applied and wave is not with_work[-1] and self.stop is None and soak:
                    self.progress.phase(wave, f"soaking {soak}s")
                    if _wait(self.cancel, soak):
                        self.stop = self.stop or "cancelled"
                if applied:
                    self.verify_wave(wave, applied)
                tally = Counter(self.result.outcomes[key(c)].status.value for c in wave.clusters)
                self.result.wave_counts[wave.name] = dict(tally)
                self.progress.wave_finished(wave, tally)
                log.info("job %s: wave %s done: %s", spec.id, wave.name, dict(tally))
            for o in list(self.result.outcomes.values()):
                if o.status is ClusterStatus.PENDING:  # waves never reached
                    o.status, o.reason, o.category = (
                        ClusterStatus.NOT_STARTED,
                        self.stop or "the job stopped",
                        "stopped",
                    )
                    _store(self.history, spec, o)
            if control.requested:
                self.stop = "cancelled"
        counts = self.result.counts()
        if self.stop is None:
            done = counts["fixed"] == self.total and not counts["failed"]
            self.status = JobStatus.SUCCEEDED if done else JobStatus.COMPLETED
        elif self.stop == "cancelled" or self.killed is not None:
            self.status = JobStatus.CANCELLED
        else:
            self.status = JobStatus.STOPPED
        self.result.status = self.status
        self.result.stop_reason = self.stop
        self.result.finished_at = datetime.now(UTC)
        self.history.update_job(
            spec.id,
            status=self.status.value,
            counters=counts,
            summary=self.result.report(clusters=False),
        )
        return self.result


def run_remediation(
    env: Environment,
    spec: JobSpec,
    edges: Edges,
    *,
    progress: JobProgress | None = None,
    cancel: threading.Event | None = None,
    approval_timeout: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
) -> JobResult:
    """Run a recorded job wave by wave on this machine (see the module docstring).

    ``cancel`` (or ``fleet jobs cancel`` from another terminal, or Ctrl-C) stops the job
    between clusters: in-flight clusters finish and are verified, nothing new is written.
    """
    runner = _Runner(
        env,
        spec,
        edges,
        progress or NullJobProgress(),
        cancel or threading.Event(),
        approval_timeout,
        clock,
    )
    try:
        return runner.run()
    except BaseException:
        runner.history.update_job(
            spec.id, status=JobStatus.FAILED.value, counters=runner.result.counts()
        )
        raise

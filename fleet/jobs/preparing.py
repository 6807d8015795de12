"""Preparing a remediation job: from the fleet, from a saved plan, or from an earlier job.

Every write a job will make is decided here, before the first one, into a ``JobSpec``
(``fleet.jobs.remediate``). Three sources:

- ``prepare_live``: a planning sweep (recorded in the history like any sweep) that judges every
  targeted cluster with the version nudge on; clusters with actions become tasks, the others
  are listed with the reason they are left alone. An unreachable or stopped cluster is listed
  for retry together with the actions it would get if it were reachable, so a later
  ``--retry`` re-applies exactly this desired state;
- ``prepare_from_plan``: a saved ``FleetPlan`` (``fleet plan --out``, ``fleet remediate --dry-run
  --out``). Like a stale Terraform plan, it is refused whole when the policies changed or any
  cluster's observed state differs from the plan's ``observedDigest`` after a fresh read
  (``StalePlan`` names the clusters);
- ``prepare_retry``: the failed, skipped-for-retry and not-started clusters of a recorded job,
  with the actions stored for them (bodies without secrets, protected settings as
  references) and the job's rollout.

Then the same rails for all three: the rollout (``fleet.apply.waves.choose_rollout``), the waves,
``Settings.max_clusters`` (``TooManyClusters`` unless raised explicitly) and every secret
reference readable now (``SecretsUnavailable``). ``load_spec`` rebuilds a recorded job's spec
from the history database (what a distributed worker needs).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fleet.apply.waves import RolloutChoice, WavePlan, assign_waves, choose_rollout
from fleet.azure.credentials import principal_of
from fleet.azure.observe import observe
from fleet.azure.session import credential_scope
from fleet.core.clusters import ClusterFacts
from fleet.core.ids import ClusterId, key
from fleet.core.vocabulary import State
from fleet.evaluate.versions import Catalog
from fleet.jobs import killswitch, secrets
from fleet.jobs.pool import bounded_map
from fleet.jobs.remediate import (
    RETRY_STATUSES,
    ClusterOutcome,
    ClusterStatus,
    ClusterTask,
    Edges,
    JobSpec,
    Mode,
    _applied_fingerprints,
    blocker,
    check_secrets,
    filter_policy,
    judge_fresh,
    skip_category,
)
from fleet.jobs.runs import Environment, HistorySink, kill_switch_halt
from fleet.jobs.sweep import Progress, Sweep, new_sweep_id
from fleet.jobs.work import CatalogCache, Target, scope
from fleet.observe.observed import ObservedCluster
from fleet.plan import pipeline
from fleet.plan.actions import Action, ClusterPlan
from fleet.policy.loading import PolicySet
from fleet.policy.models import Rollout
from fleet.record.history import History

#: Skip categories in the order that explains a cluster best (the first one found is shown).
_CATEGORY_ORDER = (
    "unreachable",
    "stopped",
    "read-error",
    "conflict",
    "flux-v1",
    "depends",
    "immutable",
    "pinned",
    "in-progress",
    "policy-error",
    "audit",
    "not-writable",
    "unmanaged",
)


class PrepareError(RuntimeError):
    """The job cannot start; the message says why and what to do (exit 2)."""


class StalePlan(PrepareError):
    """Clusters changed since the saved plan was made."""

    def __init__(self, changed: Sequence[str]) -> None:
        self.changed = list(changed)
        shown = ", ".join(self.changed[:20]) + (" ..." if len(self.changed) > 20 else "")
        super().__init__(
            f"the plan is stale: {len(self.changed)} cluster(s) changed since it was made "
            f"({shown}); nothing was written. Make a new plan."
        )


class TooManyClusters(PrepareError):
    def __init__(self, count: int, limit: int) -> None:
        self.count, self.limit = count, limit
        super().__init__(
            f"this job would write {count} clusters, more than the limit of {limit} "
            f"(FLEET_MAX_CLUSTERS); nothing was written. Pass --max-clusters {count} to allow "
            "it, or narrow the job (--policy, the policies' targets, FLEET_SUBSCRIPTIONS)."
        )


def make_edges(env: Environment, *, operation_timeout: float = 1800.0) -> Edges:
    """The I/O edges of a job from its environment (it must record: the audit trail)."""
    if env.history is None:
        raise PrepareError("a remediation job needs the history database (its audit trail)")
    settings = env.settings
    return Edges(
        session=env.session,
        history=env.history,
        catalogs=CatalogCache(env.inventory),
        fingerprint_key=secrets.fingerprint_key(settings),
        principal=principal_of(env.session.credential, credential_scope(settings.arm_endpoint)),
        operation_timeout=operation_timeout,
    )


def _reachable(facts: ClusterFacts, now: datetime) -> ClusterFacts:
    """The same cluster as if it were connected and running (to plan its retry)."""
    if facts.cluster_type == "connectedClusters":
        return facts.model_copy(
            update={"connectivity_status": "Connected", "last_connectivity_time": now}
        )
    return facts.model_copy(update={"power_state": "Running"})


class PlanningSweep(Sweep):
    """A sweep that plans with the version nudge on and keeps what a job needs per cluster:
    the full facts (tags for selector waves) and, for clusters that cannot take writes now,
    the actions they would get (their retry)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self.facts: dict[str, ClusterFacts] = {}
        self.would: dict[str, list[Action]] = {}

    def _catalog(self, observed: ObservedCluster) -> Catalog:
        try:
            return self.catalogs.get(
                observed.facts.subscription_id, observed.facts.location or "global"
            )
        except Exception:  # as the sweep does: a missing catalogue must not sink a cluster
            return Catalog.from_mapping({})

    def _judge(self, target: Target) -> pipeline.Judgement:
        # A bulk inventory (Resource Graph) may carry the observation; the writes themselves
        # never trust it: every cluster is read from ARM again right before it is written.
        observed = target.observed
        if observed is None:
            observed = observe(self.session, target.facts, should_stop=self.cancel.is_set)
            if target.notes:
                observed = dataclasses.replace(observed, notes=(*observed.notes, *target.notes))
        catalog = self._catalog(observed)
        judgement = pipeline.judge(
            observed,
            list(target.applicable),
            catalog=catalog,
            now=self.now,
            fingerprints=self.fingerprints,
            nudge_stuck_versions=True,
        )
        would: list[Action] = []
        found = blocker(judgement)
        if found is not None and found[0] in ("unreachable", "stopped"):
            reachable = dataclasses.replace(observed, facts=_reachable(observed.facts, self.now))
            would = list(
                pipeline.judge(
                    reachable,
                    list(target.applicable),
                    catalog=catalog,
                    now=self.now,
                    fingerprints=self.fingerprints,
                    nudge_stuck_versions=True,
                ).plan.actions
            )
        with self._lock:
            self.facts[observed.facts.key] = observed.facts
            if would:
                self.would[observed.facts.key] = would
        return judgement


_CODE_OF = {
    "unreachable": "CLUSTER_UNREACHABLE",
    "stopped": "CLUSTER_STOPPED",
    "read-error": "READ_ERROR",
}
_CATEGORY_OF = {code: category for category, code in _CODE_OF.items()}


def _why(skipped: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(reason, category) of a cluster from its plan's skipped (code, reason) pairs."""
    items = list(dict.fromkeys(skipped))
    categories = [_CATEGORY_OF.get(c) or skip_category(r) for c, r in items]
    best = min(
        range(len(items)),
        key=lambda i: (
            _CATEGORY_ORDER.index(categories[i])
            if categories[i] in _CATEGORY_ORDER
            else len(_CATEGORY_ORDER)
        ),
    )
    reasons = [f"{c}: {r}" for c, r in items]
    order = [best, *[i for i in range(len(items)) if i != best]]
    return "; ".join(reasons[i] for i in order[:4]), categories[best]


def _check_policy(policy_set: PolicySet, policy: str | None) -> None:
    if policy is None:
        return
    names = {p.name: p for p in policy_set.policies}
    if policy not in names:
        raise PrepareError(
            f"no policy named {policy!r} in the given policies ({', '.join(sorted(names))})"
        )
    if names[policy].spec.mode != "enforce":
        raise PrepareError(f"policy {policy!r} is in audit mode: it never writes")


def _finish(spec: JobSpec, *, max_clusters: int, choice: RolloutChoice | None = None) -> JobSpec:
    """The rails every job passes: rollout, waves, the cluster limit, readable secrets."""
    if len(spec.tasks) > max_clusters:
        raise TooManyClusters(len(spec.tasks), max_clusters)
    if choice is None:
        involved = {p for t in spec.tasks.values() for a in t.actions for p in a.policies}
        choice = choose_rollout(spec.policy_set.policies, involved, spec.policy)
    waves = assign_waves((t.facts for t in spec.tasks.values()), choice.rollout)
    for wave in waves:
        for cid in wave.clusters:
            spec.tasks[key(cid)] = replace(spec.tasks[key(cid)], wave=wave.name)
    spec.choice, spec.waves = choice, waves
    try:
        check_secrets(spec.policy_set, spec.tasks.values())
    except Exception as exc:
        raise PrepareError(
            f"secret references cannot be read now ({exc}); nothing was written"
        ) from None
    return spec


def prepare_live(
    env: Environment,
    policy_set: PolicySet,
    *,
    policy: str | None = None,
    max_clusters: int | None = None,
    policy_paths: Sequence[str] = (),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    now: datetime | None = None,
) -> JobSpec:
    """Plan every targeted cluster now (a recorded sweep) and make the job of it."""
    _check_policy(policy_set, policy)
    settings = env.settings
    now = now or datetime.now(UTC)
    subscriptions = env.inventory.subscriptions(scope(policy_set, settings.subscriptions))
    applied = env.history.applied_fingerprints(None) if env.history is not None else {}
    fingerprints = secrets.fingerprints_for(policy_set, secrets.fingerprint_key(settings), applied)
    sweep = PlanningSweep(
        session=env.session,
        inventory=env.inventory,
        policy_set=policy_set,
        subscriptions=subscriptions,
        fingerprints=fingerprints,
        now=now,
        progress=progress,
        cancel=cancel,
        halt=kill_switch_halt(env.history),
    )
    sink: HistorySink | None = None
    if env.history is not None:
        env.history.start_sweep(sweep.info(finished=None, targets=0, complete=False).to_report())
        sink = HistorySink(env.history, sweep.id)
        sweep.sinks.append(sink)
    outcome = sweep.run()
    if env.history is not None and sink is not None:
        sink.flush()
        env.history.finish_sweep(sweep.id, outcome.info.to_report(), outcome.summary)
    if outcome.stopped_by is not None:
        raise killswitch.KillSwitchEngaged(killswitch.read(env.history))
    if not outcome.info.complete:
        raise KeyboardInterrupt  # planning was interrupted: nothing may be written

    spec = JobSpec(
        id=new_sweep_id(now),
        mode=Mode.LIVE,
        policy_set=policy_set,
        choice=RolloutChoice(None),
        waves=[],
        tasks={},
        policy=policy,
        desired_fingerprints=dict(fingerprints.desired),
        sweep_id=sweep.id,
        policy_paths=list(policy_paths),
        created=now,
    )
    for judgement in outcome.judgements:
        verdict, plan = judgement.verdict, judgement.plan
        if policy is not None and policy not in judgement.desired.policies:
            continue  # not this policy's cluster
        cid = key(verdict.id)
        facts = sweep.facts.get(cid)
        if facts is None:  # pragma: no cover - every judged cluster was observed
            continue
        actions, depends = filter_policy(plan.actions, policy)
        found = blocker(judgement)
        if found is not None:
            planned, _ = filter_policy(sweep.would.get(cid, []), policy)
            spec.outcomes.append(
                ClusterOutcome(
                    facts.id,
                    facts.name,
                    "",
                    ClusterStatus.RETRY,
                    found[1],
                    found[0],
                    facts=facts,
                    planned=planned,
                )
            )
        elif depends is not None:
            spec.outcomes.append(
                ClusterOutcome(facts.id, facts.name, "", ClusterStatus.SKIPPED, depends, "depends")
            )
        elif actions:
            spec.tasks[cid] = ClusterTask(
                facts, tuple(actions), observed_digest=plan.observed_digest
            )
        elif verdict.state in (State.COMPLIANT, State.EXEMPT) or not plan.skipped:
            spec.compliant += 1
        else:
            reason, category = _why((s.code, s.reason) for s in plan.skipped)
            spec.outcomes.append(
                ClusterOutcome(facts.id, facts.name, "", ClusterStatus.SKIPPED, reason, category)
            )
    return _finish(spec, max_clusters=max_clusters or settings.max_clusters)


def _facts_of(cluster_id: str) -> ClusterFacts:
    """Enough facts to read a cluster by id (the read fills in the rest)."""
    cid = ClusterId.parse(cluster_id)
    return ClusterFacts(
        id=cluster_id,
        name=cid.name,
        cluster_type=cid.cluster_type,
        subscription_id=cid.subscription_id,
        resource_group=cid.resource_group,
    )


def prepare_from_plan(
    env: Environment,
    edges: Edges,
    policy_set: PolicySet,
    document: Mapping[str, Any],
    *,
    policy: str | None = None,
    max_clusters: int | None = None,
    policy_paths: Sequence[str] = (),
    plan_file: str | None = None,
    now: datetime | None = None,
) -> JobSpec:
    """A job that applies exactly a saved plan; ``StalePlan`` when the world moved on."""
    _check_policy(policy_set, policy)
    if document.get("kind") != "FleetPlan" or document.get("version") != 1:
        raise PrepareError("not a fleet plan (expected kind FleetPlan, version 1)")
    if document.get("policyRevision") != policy_set.revision:
        raise PrepareError(
            f"the policies changed since the plan was made (revision "
            f"{document.get('policyRevision')}, now {policy_set.revision}); nothing was "
            "written. Make a new plan."
        )
    now = now or datetime.now(UTC)
    plans: list[ClusterPlan] = []
    for raw in document.get("clusters") or ():
        try:
            plans.append(ClusterPlan.model_validate(raw))
        except ValueError as exc:
            raise PrepareError(f"the plan is not valid: {exc}") from None
    spec = JobSpec(
        id=new_sweep_id(now),
        mode=Mode.PLAN,
        policy_set=policy_set,
        choice=RolloutChoice(None),
        waves=[],
        tasks={},
        policy=policy,
        desired_fingerprints=secrets.desired_fingerprints(policy_set, edges.fingerprint_key),
        sweep_id=str(document.get("sweepId") or "") or None,
        policy_paths=list(policy_paths),
        plan_file=plan_file,
        created=now,
    )
    wanted = [p for p in plans if filter_policy(p.actions, policy)[0]]

    def fresh(p: ClusterPlan) -> tuple[ClusterPlan, ObservedCluster, str | None]:
        observed = observe(edges.session, _facts_of(p.cluster_id))
        judgement = judge_fresh(edges, spec, observed, _applied_fingerprints(edges, spec, observed))
        digest = judgement.plan.observed_digest if judgement is not None else None
        return p, observed, digest

    changed: list[str] = []
    never = threading.Event()
    for p, observed, digest in bounded_map(
        fresh, wanted, concurrency=env.settings.concurrency, cancel=never, name="fleet-plan-check"
    ):
        if digest != p.observed_digest:
            changed.append(p.cluster_name)
            continue
        actions, _ = filter_policy(p.actions, policy)
        spec.tasks[observed.facts.key] = ClusterTask(
            observed.facts, tuple(actions), observed_digest=p.observed_digest
        )
    if changed:
        raise StalePlan(sorted(changed))
    for p in plans:
        if key(p.cluster_id) in spec.tasks or not p.skipped:
            continue
        if policy is not None and not any(policy in a.policies for a in p.actions) and p.actions:
            continue
        reason, category = _why((s.code, s.reason) for s in p.skipped)
        status = (
            ClusterStatus.RETRY
            if category in ("unreachable", "stopped", "read-error")
            else ClusterStatus.SKIPPED
        )
        spec.outcomes.append(
            ClusterOutcome(
                p.cluster_id,
                p.cluster_name,
                "",
                status,
                reason,
                category,
                facts=_facts_of(p.cluster_id),
            )
        )
    return _finish(spec, max_clusters=max_clusters or env.settings.max_clusters)


def _rollout_of(job: Mapping[str, Any]) -> RolloutChoice:
    options = job.get("options") or {}
    rollout = Rollout.model_validate(options.get("rollout") or {})
    return RolloutChoice(options.get("rolloutPolicy"), rollout, f"the rollout of job {job['id']}")


def prepare_retry(
    env: Environment,
    edges: Edges,
    policy_set: PolicySet,
    job_ref: str,
    *,
    max_clusters: int | None = None,
    policy_paths: Sequence[str] = (),
    now: datetime | None = None,
) -> JobSpec:
    """A job re-applying an earlier job's desired state to its failed, skipped-for-retry and
    not-started clusters (with the earlier job's rollout and ``--policy``)."""
    history = edges.history
    job_id = history.find_job(job_ref)
    job = history.get_job(job_id)
    assert job is not None
    if job["kind"] != "remediation":
        raise PrepareError(f"job {job_id} is a {job['kind']} job, not a remediation")
    options = job.get("options") or {}
    now = now or datetime.now(UTC)
    spec = JobSpec(
        id=new_sweep_id(now),
        mode=Mode.RETRY,
        policy_set=policy_set,
        choice=RolloutChoice(None),
        waves=[],
        tasks={},
        policy=options.get("policy"),
        desired_fingerprints=secrets.desired_fingerprints(policy_set, edges.fingerprint_key),
        retry_of=job_id,
        sweep_id=job.get("sweepId"),
        policy_paths=list(policy_paths) or list(options.get("policies") or []),
        created=now,
    )
    for row in history.job_clusters(job_id, statuses=[s.value for s in RETRY_STATUSES]):
        facts = (
            ClusterFacts.model_validate(row["facts"])
            if row.get("facts")
            else _facts_of(row["clusterId"])
        )
        actions = tuple(Action.model_validate(a) for a in row.get("actions") or ())
        spec.tasks[facts.key] = ClusterTask(facts, actions)
    return _finish(
        spec, max_clusters=max_clusters or env.settings.max_clusters, choice=_rollout_of(job)
    )


def load_spec(history: History, job_id: str, policy_set: PolicySet, key_bytes: bytes) -> JobSpec:
    """The spec of a recorded job, rebuilt from the history database (for a worker that runs
    its clusters one at a time): tasks are its clusters with actions, waves as recorded."""
    job = history.get_job(job_id)
    if job is None:
        raise PrepareError(f"no job {job_id!r}")
    options = job.get("options") or {}
    rows = history.job_clusters(job_id)
    spec = JobSpec(
        id=job_id,
        mode=Mode(options.get("mode") or "live"),
        policy_set=policy_set,
        choice=_rollout_of(job),
        waves=[],
        tasks={},
        policy=options.get("policy"),
        desired_fingerprints=secrets.desired_fingerprints(policy_set, key_bytes),
        sweep_id=job.get("sweepId"),
        retry_of=options.get("retryOf"),
        policy_paths=list(options.get("policies") or []),
    )
    members: dict[str, list[str]] = {}
    for row in rows:
        if row.get("facts") and row.get("wave"):
            facts = ClusterFacts.model_validate(row["facts"])
            actions = tuple(Action.model_validate(a) for a in row.get("actions") or ())
            digest = (row.get("outcome") or {}).get("observedDigest") or ""
            spec.tasks[facts.key] = ClusterTask(facts, actions, row["wave"], digest)
            members.setdefault(row["wave"], []).append(facts.id)
        else:
            spec.outcomes.append(
                ClusterOutcome(
                    row["clusterId"],
                    row["name"],
                    "",
                    ClusterStatus(row["status"]),
                    row.get("reason"),
                    (row.get("outcome") or {}).get("category"),
                )
            )
    spec.waves = [
        WavePlan(
            w["name"],
            i,
            tuple(members.get(w["name"], ())),
            bool(w.get("approval")),
            bool(w.get("implicit")),
        )
        for i, w in enumerate(options.get("waves") or [])
    ]
    return spec


def plan_document(spec: JobSpec) -> dict[str, Any]:
    """The job as a saved plan (``FleetPlan``, the format of ``fleet plan --out``), with the
    waves and the clusters left alone: ``fleet remediate --plan`` applies it exactly."""
    counts = {"+": 0, "~": 0, "-": 0}
    clusters: list[dict[str, Any]] = []
    for task in sorted(spec.tasks.values(), key=lambda t: t.facts.key):
        for action in task.actions:
            counts[action.change] = counts.get(action.change, 0) + 1
        clusters.append(
            ClusterPlan(
                cluster_id=task.id,
                cluster_name=task.facts.name,
                actions=list(task.actions),
                observed_digest=task.observed_digest,
            ).model_dump(mode="json", by_alias=True)
        )
    skipped = [
        {
            "clusterId": o.cluster_id,
            "clusterName": o.name,
            "actions": [],
            "skipped": [
                {
                    "clusterId": o.cluster_id,
                    "resourceId": o.cluster_id,
                    "code": _CODE_OF.get(o.category or "", "SKIPPED"),
                    "reason": o.reason or "",
                }
            ],
            "observedDigest": "",
        }
        for o in sorted(spec.outcomes, key=lambda o: o.cluster_id.lower())
    ]
    rollout = spec.choice.rollout
    return {
        "kind": "FleetPlan",
        "version": 1,
        "createdAt": spec.created.isoformat(),
        "sweepId": spec.sweep_id,
        "policyRevision": spec.policy_set.revision,
        "policies": [p.name for p in spec.policy_set.policies],
        "summary": {
            "clusters": len(spec.tasks),
            "create": counts["+"],
            "update": counts["~"],
            "delete": counts["-"],
            "skipped": len(spec.outcomes),
            "compliant": spec.compliant,
        },
        "clusters": clusters + skipped,
        "rollout": {
            "policy": spec.choice.policy,
            "why": spec.choice.why,
            "failureBudget": rollout.failure_budget,
            "maxConcurrency": rollout.max_concurrency,
            "soakSeconds": rollout.soak_seconds,
            "waves": [
                {
                    "name": w.name,
                    "approval": w.approval,
                    "implicit": w.implicit,
                    "clusters": [spec.task_of(c).facts.name for c in w.clusters],
                }
                for w in spec.waves
            ],
        },
    }


__all__ = [
    "PlanningSweep",
    "PrepareError",
    "StalePlan",
    "TooManyClusters",
    "load_spec",
    "make_edges",
    "plan_document",
    "prepare_from_plan",
    "prepare_live",
    "prepare_retry",
]

"""Preparing a remediation job: from the fleet, from a saved plan, or from an earlier job.

Every write a job will make is decided here, before the first one, into a ``JobSpec``
(``fleet.apply.spec``). ``prepare(env, edges, policy_set, request)`` is the one dispatch both
engines use (the CLI on this machine, the Celery start task on a worker):

- live (``prepare_live``): a planning sweep (``fleet.jobs.planning_sweep``, recorded in the
  history like any sweep) that judges every targeted cluster with the version nudge on;
  clusters with actions become tasks, the others are listed with the reason they are left
  alone (a cluster whose version promotion is held is listed with why, compliant or not).
  An unreachable or stopped cluster is listed for retry together with the actions it would
  get if it were reachable, so a later ``--retry`` re-applies exactly this desired state;
- plan (``prepare_from_plan``): a saved ``FleetPlan``. Like a stale Terraform plan, it is
  refused whole when the policies changed or any cluster's observed state differs from the
  plan's ``observedDigest`` after a fresh read (``StalePlan`` names the clusters);
- retry (``prepare_retry``): the failed, skipped-for-retry and not-started clusters of a
  recorded job, with the actions stored for them and the job's rollout.

Then the same rails for all three: the rollout (``fleet.apply.waves.choose_rollout``), the
waves, ``Settings.max_clusters`` (``TooManyClusters`` unless raised explicitly) and every
secret reference readable now. ``load_spec`` rebuilds a recorded job's spec from the history
database (what a distributed worker, or a resumed job, needs); ``plan_document`` is the job
as a saved plan.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fleet.apply import readcount, secrets
from fleet.apply.auto import AutoJob, filter_auto
from fleet.apply.choose import blocker, explain, filter_policy
from fleet.apply.outcomes import RETRY_STATUSES, Category, ClusterOutcome, ClusterStatus
from fleet.apply.spec import ClusterTask, JobRequest, JobSpec, Mode
from fleet.apply.steps import Edges, applied_fingerprints, judge_fresh
from fleet.apply.waves import RolloutChoice, WavePlan, assign_waves, choose_rollout, position
from fleet.azure.catalogs import CatalogCache
from fleet.azure.credentials import principal_of
from fleet.azure.graph import GraphInventory
from fleet.azure.keyvault import Vaults
from fleet.azure.observe import observe
from fleet.azure.session import credential_scope
from fleet.core.clusters import ClusterFacts
from fleet.core.duties import Actor
from fleet.core.errors import (
    KillSwitchEngaged,
    PlanUnreadable,
    PrepareError,
    SecretsUnavailable,
    StalePlan,
    TooManyClusters,
)
from fleet.core.ids import key
from fleet.core.vocabulary import State
from fleet.jobs import deferrals, killswitch
from fleet.jobs.planning_sweep import PlanningSweep
from fleet.jobs.pool import bounded_map
from fleet.jobs.runs import Environment, HistorySink, kill_switch_halt
from fleet.jobs.sweep import Progress, new_sweep_id
from fleet.jobs.work import scope
from fleet.notify import announce
from fleet.observe.observed import ObservedCluster
from fleet.plan import document, promotion
from fleet.plan.actions import Action, ClusterPlan, SkipCategory, Skipped
from fleet.policy.loading import PolicySet
from fleet.policy.models import Rollout
from fleet.record.history import History


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
        clock=env.now,
        # With the graph inventory a wave is verified through Resource Graph first.
        graph=env.inventory if isinstance(env.inventory, GraphInventory) else None,
    )


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


def _finish(
    env: Environment,
    spec: JobSpec,
    *,
    max_clusters: int,
    now: datetime,
    choice: RolloutChoice | None = None,
) -> JobSpec:
    """The rails every job passes: windows, an automatic run's limit, rollout, waves, the
    cluster limit, readable secrets."""
    deferrals.defer_closed(env, spec, now)
    deferrals.limit_run(spec, now)
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
        secrets.check_secrets(spec.policy_set, spec.tasks.values(), env.session.vaults())
    except SecretsUnavailable as exc:
        raise PrepareError(
            f"secret references cannot be read now ({exc}); nothing was written"
        ) from None
    return spec


def _left_alone(
    cluster: ClusterFacts, status: ClusterStatus, reason: str, category: Category, **more: Any
) -> ClusterOutcome:
    return ClusterOutcome(cluster.id, cluster.name, "", status, reason, category, **more)


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
    auto: AutoJob | None = None,
) -> JobSpec:
    """Plan every targeted cluster now (a recorded sweep) and make the job of it (``auto``: an
    automatic job, limited to what ``remediation.auto`` allows)."""
    _check_policy(policy_set, policy)
    settings = env.settings
    now = now or env.now()
    subscriptions = env.inventory.subscriptions(scope(policy_set, settings.subscriptions))
    applied = env.history.applied_fingerprints(None) if env.history is not None else {}
    fingerprints = secrets.fingerprints_for(
        policy_set, secrets.fingerprint_key(settings), applied, env.session.vaults()
    )
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
    planned_at = datetime.now(UTC)
    sink: HistorySink | None = None
    if env.history is not None:
        env.history.start_sweep(sweep.info(finished=None, targets=0, complete=False).to_report())
        sink = HistorySink(env.history, sweep.id)
        sweep.sinks.append(sink)
    readcount.for_session(env.session)  # counted from here: the job report's ``reads``
    with readcount.phase("planning"):
        outcome = sweep.run()
    if env.history is not None and sink is not None:
        sink.flush()
        env.history.finish_sweep(sweep.id, outcome.info.to_report(), outcome.summary)
        # A recorded sweep like any other: what it found first is announced here, or never
        # (the next sweep compares with this one).
        announce.sweep_finished(settings, env.history, sweep.id)
    if outcome.stopped_by is not None:
        raise KillSwitchEngaged(killswitch.read(env.history).describe())
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
        auto=auto,
    )
    for judgement in sweep.promoted(outcome.judgements):
        verdict, plan = judgement.verdict, judgement.plan
        if policy is not None and policy not in judgement.desired.policies:
            continue  # not this policy's cluster
        facts = sweep.facts.get(key(verdict.id))
        if facts is None:  # pragma: no cover - every judged cluster was observed
            continue
        actions, depends = filter_policy(plan.actions, policy)
        actions, limited = filter_auto(actions, auto)
        found = blocker(judgement)
        if found is not None:
            planned, _ = filter_policy(sweep.would.get(facts.key, []), policy)
            spec.outcomes.append(
                _left_alone(
                    facts,
                    ClusterStatus.RETRY,
                    found[1],
                    found[0],
                    facts=facts,
                    planned=planned,
                    skips=list(plan.skipped),
                )
            )
        elif depends is not None:
            skip = Skipped(
                cluster_id=facts.id,
                resource_id=facts.id,
                code="POLICY_DEPENDENCY",
                reason=depends,
                category=SkipCategory.DEPENDS,
            )
            spec.outcomes.append(
                _left_alone(facts, ClusterStatus.SKIPPED, depends, Category.DEPENDS, skips=[skip])
            )
        elif actions:
            spec.tasks[facts.key] = ClusterTask(
                facts, tuple(actions), observed_digest=plan.observed_digest
            )
        elif limited is not None:
            spec.outcomes.append(
                _left_alone(facts, ClusterStatus.SKIPPED, limited, Category.AUTO_LIMITS)
            )
        elif (verdict.state in (State.COMPLIANT, State.EXEMPT) or not plan.skipped) and not any(
            s.code == promotion.HELD_CODE for s in plan.skipped
        ):
            spec.compliant += 1
        else:
            reason, category = explain(plan.skipped)
            spec.outcomes.append(
                _left_alone(
                    facts, ClusterStatus.SKIPPED, reason, category, skips=list(plan.skipped)
                )
            )
    # The tasks' planning observations stand in for their untouched children right before
    # their writes (fleet.apply.prewrite); the others are not needed.
    spec.planned = {k: sweep.observed[k] for k in spec.tasks if k in sweep.observed}
    spec.planned_at = planned_at
    sweep.observed.clear()
    return _finish(env, spec, max_clusters=max_clusters or settings.max_clusters, now=now)


def prepare_from_plan(
    env: Environment,
    edges: Edges,
    policy_set: PolicySet,
    raw: Mapping[str, Any],
    *,
    policy: str | None = None,
    max_clusters: int | None = None,
    policy_paths: Sequence[str] = (),
    plan_file: str | None = None,
    now: datetime | None = None,
) -> JobSpec:
    """A job that applies exactly a saved plan; ``StalePlan`` when the world moved on."""
    _check_policy(policy_set, policy)
    try:
        saved = document.load(dict(raw))
    except PlanUnreadable as exc:
        raise PrepareError(str(exc)) from None
    if saved.policy_revision != policy_set.revision:
        raise PrepareError(
            f"the policies changed since the plan was made (revision "
            f"{saved.policy_revision}, now {policy_set.revision}); nothing was "
            "written. Make a new plan."
        )
    now = now or env.now()
    spec = JobSpec(
        id=new_sweep_id(now),
        mode=Mode.PLAN,
        policy_set=policy_set,
        choice=RolloutChoice(None),
        waves=[],
        tasks={},
        policy=policy,
        desired_fingerprints=secrets.desired_fingerprints(
            policy_set, edges.fingerprint_key, edges.session.vaults()
        ),
        sweep_id=saved.sweep_id,
        policy_paths=list(policy_paths),
        plan_file=plan_file,
        created=now,
    )
    wanted = [p for p in saved.clusters if filter_policy(p.actions, policy)[0]]

    def fresh(p: ClusterPlan) -> tuple[ClusterPlan, ObservedCluster, str | None]:
        observed = observe(edges.session, ClusterFacts.of_id(p.cluster_id))
        judgement = judge_fresh(edges, spec, observed, applied_fingerprints(edges, spec, observed))
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
    for p in saved.clusters:
        if key(p.cluster_id) in spec.tasks or not p.skipped:
            continue
        if policy is not None and not any(policy in a.policies for a in p.actions) and p.actions:
            continue
        reason, category = explain(p.skipped)
        blocked = any(s.category.blocks_writes for s in p.skipped)
        facts = ClusterFacts.of_id(p.cluster_id)
        status = ClusterStatus.RETRY if blocked else ClusterStatus.SKIPPED
        spec.outcomes.append(
            _left_alone(facts, status, reason, category, facts=facts, skips=list(p.skipped))
        )
    return _finish(env, spec, max_clusters=max_clusters or env.settings.max_clusters, now=now)


def _rollout_of(job: Mapping[str, Any], *, why: str | None = None) -> RolloutChoice:
    options = job.get("options") or {}
    rollout = Rollout.model_validate(options.get("rollout") or {})
    return RolloutChoice(
        options.get("rolloutPolicy"), rollout, why or f"the rollout of job {job['id']}"
    )


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
    now = now or env.now()
    spec = JobSpec(
        id=new_sweep_id(now),
        mode=Mode.RETRY,
        policy_set=policy_set,
        choice=RolloutChoice(None),
        waves=[],
        tasks={},
        policy=options.get("policy"),
        desired_fingerprints=secrets.desired_fingerprints(
            policy_set, edges.fingerprint_key, edges.session.vaults()
        ),
        retry_of=job_id,
        sweep_id=job.get("sweepId"),
        policy_paths=list(policy_paths) or list(options.get("policies") or []),
        created=now,
    )
    for row in history.job_clusters(job_id, statuses=[s.value for s in RETRY_STATUSES]):
        facts = (
            ClusterFacts.model_validate(row["facts"])
            if row.get("facts")
            else ClusterFacts.of_id(row["clusterId"])
        )
        actions = tuple(Action.model_validate(a) for a in row.get("actions") or ())
        spec.tasks[facts.key] = ClusterTask(facts, actions)
    return _finish(
        env,
        spec,
        max_clusters=max_clusters or env.settings.max_clusters,
        now=now,
        choice=_rollout_of(job),
    )


def prepare(
    env: Environment,
    edges: Edges,
    policy_set: PolicySet,
    request: JobRequest,
    *,
    engine: str = "local",
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> JobSpec:
    """The job ``request`` asks for, prepared on this machine (the live / plan / retry
    dispatch both engines use)."""
    paths = list(request.policy_paths)
    if request.mode is Mode.PLAN:
        assert request.plan_document is not None
        spec = prepare_from_plan(
            env,
            edges,
            policy_set,
            request.plan_document,
            policy=request.policy,
            max_clusters=request.max_clusters,
            policy_paths=paths,
            plan_file=request.plan_file,
        )
    elif request.mode is Mode.RETRY:
        assert request.retry_of is not None
        spec = prepare_retry(
            env,
            edges,
            policy_set,
            request.retry_of,
            max_clusters=request.max_clusters,
            policy_paths=paths,
        )
    else:
        spec = prepare_live(
            env,
            policy_set,
            policy=request.policy,
            max_clusters=request.max_clusters,
            policy_paths=paths,
            progress=progress,
            cancel=cancel,
            auto=request.auto,
        )
    spec.engine = engine
    spec.requested_by = request.requested_by
    return spec


def load_spec(
    history: History,
    job_id: str,
    policy_set: PolicySet,
    key_bytes: bytes,
    vaults: Vaults | None = None,
) -> JobSpec:
    """The spec of a recorded job, rebuilt from the history database (for a worker that runs
    its clusters one at a time, or a resumed job): tasks are its clusters with actions, waves
    as recorded; ``vaults`` reads the job's Key Vault references for its desired fingerprints."""
    job = history.get_job(job_id)
    if job is None:
        raise PrepareError(f"no job {job_id!r}")
    options = job.get("options") or {}
    spec = JobSpec(
        id=job_id,
        mode=Mode(options.get("mode") or "live"),
        policy_set=policy_set,
        choice=_rollout_of(job, why=options.get("rolloutWhy")),
        waves=[],
        tasks={},
        compliant=int(options.get("compliant") or 0),
        policy=options.get("policy"),
        desired_fingerprints=secrets.desired_fingerprints(policy_set, key_bytes, vaults),
        sweep_id=job.get("sweepId"),
        retry_of=options.get("retryOf"),
        plan_file=options.get("planFile"),
        policy_paths=list(options.get("policies") or []),
        engine=str(options.get("engine") or "local"),
        requested_by=Actor.from_json(options.get("createdBy")),
        auto=AutoJob.from_json(options.get("auto")),
    )
    members: dict[str, list[str]] = {}
    for row in history.job_clusters(job_id):
        if row.get("facts") and row.get("wave"):
            facts = ClusterFacts.model_validate(row["facts"])
            actions = tuple(Action.model_validate(a) for a in row.get("actions") or ())
            digest = (row.get("outcome") or {}).get("observedDigest") or ""
            spec.tasks[facts.key] = ClusterTask(facts, actions, row["wave"], digest)
            members.setdefault(row["wave"], []).append(facts.id)
        else:
            outcome = ClusterOutcome.from_state(
                {
                    "id": row["clusterId"],
                    "name": row["name"],
                    "status": row["status"],
                    "reason": row.get("reason"),
                    **(row.get("outcome") or {}),
                }
            )
            spec.outcomes.append(outcome)
    # Within a wave, clusters run in the order ``assign_waves`` gave them (by their stable
    # position), not in the history's row order.
    spec.waves = [
        WavePlan(
            w["name"],
            i,
            tuple(sorted(members.get(w["name"], ()), key=lambda c: (position(c), key(c)))),
            bool(w.get("approval")),
            bool(w.get("implicit")),
            int(w.get("approvers") or 1),
        )
        for i, w in enumerate(options.get("waves") or [])
    ]
    return spec


def plan_document(spec: JobSpec, *, subscriptions: Sequence[str] | None = None) -> dict[str, Any]:
    """The job as a saved plan (``FleetPlan``, ``fleet.plan.document``), with its rollout and
    waves and the clusters left alone: ``fleet remediate --plan`` applies it exactly."""
    plans = [
        ClusterPlan(
            cluster_id=task.id,
            cluster_name=task.facts.name,
            actions=list(task.actions),
            observed_digest=task.observed_digest,
            window=spec.windows.get(task.facts.key),
        )
        for task in spec.tasks.values()
    ]
    # Deferred clusters keep their actions: ``--plan`` writes them once their window opens.
    plans += [
        ClusterPlan(
            cluster_id=o.cluster_id,
            cluster_name=o.name,
            actions=o.planned if o.status is ClusterStatus.DEFERRED else [],
            skipped=o.skips,
            window=spec.windows.get(key(o.cluster_id)),
        )
        for o in spec.outcomes
        if o.skips or o.status is ClusterStatus.DEFERRED
    ]
    rollout = spec.choice.rollout
    plan_rollout = document.PlanRollout(
        policy=spec.choice.policy,
        why=spec.choice.why,
        failure_budget=rollout.failure_budget,
        max_concurrency=rollout.max_concurrency,
        soak_seconds=rollout.soak_seconds,
        waves=[
            document.PlanWave(
                name=w.name,
                approval=w.approval,
                implicit=w.implicit,
                clusters=[spec.task_of(c).facts.name for c in w.clusters],
            )
            for w in spec.waves
        ],
    )
    return document.build(
        plans,
        created_at=spec.created,
        sweep_id=spec.sweep_id,
        policy_revision=spec.policy_set.revision,
        policies=[p.name for p in spec.policy_set.policies],
        subscriptions=subscriptions,
        compliant=spec.compliant,
        rollout=plan_rollout,
    ).to_json()

"""Which actions a job sends to a cluster now, decided from a fresh judgement (pure).

Right before a cluster is written it is read and judged again; this module turns that fresh
judgement and the job's mode into the actions to send, or the reason to leave the cluster alone:

- live: the fresh plan (only ``--policy``'s actions when given);
- plan: exactly the saved actions, only when the cluster is unchanged since the plan and the
  policies still plan exactly them (a resumed job asks instead what is still missing);
- retry: the stored actions still allowed by today's policies and not already in place.

It also says when a cluster cannot take writes at all (``blocker``: offline, stopped, unread),
and after a wave whether a written cluster still needs something (``remaining_problems``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fleet.apply import verify
from fleet.apply.auto import filter_auto
from fleet.apply.outcomes import Category
from fleet.apply.spec import ClusterTask, JobSpec, Mode
from fleet.core.ids import key
from fleet.core.vocabulary import NON_COUNTING, Code
from fleet.desired.fingerprints import Fingerprints
from fleet.observe.observed import ObservedCluster
from fleet.plan.actions import Action, ActionKind, Skipped
from fleet.plan.pipeline import Judgement
from fleet.plan.planning import canonical_json

_VERSION_CODES = frozenset(
    {Code.EXTENSION_VERSION_OUT_OF_WINDOW, Code.EXTENSION_VERSION_UNSUPPORTED_ARCH}
)


@dataclass(frozen=True)
class Choice:
    """The actions to send now, or why none (``reason`` and ``category`` then say why)."""

    actions: list[Action] = field(default_factory=list)
    reason: str | None = None
    category: Category | None = None


def category_of(skip: Skipped) -> Category:
    return Category.of_skip(skip.category)


def blocker(judgement: Judgement) -> tuple[Category, str] | None:
    """(category, reason) when the cluster cannot take writes now (offline, stopped, unread)."""
    for skip in judgement.plan.skipped:
        if skip.category.blocks_writes:
            return category_of(skip), skip.reason
    return None


def explain(skipped: Sequence[Skipped]) -> tuple[str, Category]:
    """(reason, category) of a cluster left alone, from its plan's skips: the category that
    explains it best first, then up to three more reasons."""
    from fleet.apply.outcomes import EXPLAINS_BEST

    items = list(dict.fromkeys((s.code, s.reason, category_of(s)) for s in skipped))
    rank = {c: i for i, c in enumerate(EXPLAINS_BEST)}
    best = min(range(len(items)), key=lambda i: rank.get(items[i][2], len(rank)))
    order = [best, *[i for i in range(len(items)) if i != best]]
    return "; ".join(f"{items[i][0]}: {items[i][1]}" for i in order[:4]), items[best][2]


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


def still_allowed(action: Action, spec: JobSpec, judgement: Judgement) -> str | None:
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


def is_nudge(action: Action) -> bool:
    """A re-PUT of an unchanged extension to move it back into the version window."""
    return action.kind is ActionKind.PUT_EXTENSION and any(
        r.code in _VERSION_CODES for r in action.reasons
    )


def version_problem(judgement: Judgement, action: Action) -> str | None:
    """A nudged extension still outside its window (a finding an enforce policy owns)."""
    enforce = set(judgement.desired.enforce)
    for f in judgement.verdict.findings:
        if (
            f.code in _VERSION_CODES
            and f.severity not in NON_COUNTING
            and f.policy in enforce
            and key(f.resource) == key(action.resource_id)
        ):
            return (
                f"extension still at version {f.actual}, outside the window "
                f"({f.code.value}) after the re-PUT"
            )
    return None


def _missing(
    spec: JobSpec,
    stored: Sequence[Action],
    judgement: Judgement,
    observed: ObservedCluster,
    fingerprints: Fingerprints | None,
) -> Choice:
    """The stored actions still allowed and not yet in place (retry, and resumed plans)."""
    todo: list[Action] = []
    for action in stored:
        refusal = still_allowed(action, spec, judgement)
        if refusal is not None:
            return Choice(reason=refusal, category=Category.GUARD)
        if is_nudge(action):
            if version_problem(judgement, action) is not None:
                todo.append(action)
        elif verify.problem(observed, action, fingerprints) is not None:
            todo.append(action)
    if not todo:
        return Choice(
            reason="already in the desired state the job applies", category=Category.COMPLIANT
        )
    return Choice(todo)


def choose(
    spec: JobSpec,
    task: ClusterTask,
    judgement: Judgement,
    observed: ObservedCluster,
    fingerprints: Fingerprints | None = None,
) -> Choice:
    """The actions to send to ``task``'s cluster now (see the module docstring)."""
    fresh, why = filter_policy(judgement.plan.actions, spec.policy)
    if spec.mode is Mode.LIVE or (spec.mode is Mode.RETRY and not task.actions):
        if why:
            return Choice(reason=why, category=Category.DEPENDS)
        # Kept to at write time too: the cluster may have drifted since preparation.
        fresh, limited = filter_auto(fresh, spec.auto)
        if limited and not fresh:
            return Choice(reason=limited, category=Category.AUTO_LIMITS)
        if not fresh:
            if judgement.plan.skipped:
                first = judgement.plan.skipped[0]
                return Choice(
                    reason=f"nothing to write now: {first.reason}", category=category_of(first)
                )
            return Choice(reason="compliant now: nothing to write", category=Category.COMPLIANT)
        return Choice(fresh)
    if spec.mode is Mode.PLAN and not spec.resumed:
        if judgement.plan.observed_digest != task.observed_digest:
            return Choice(
                reason="the cluster changed since the plan was made: make a new plan",
                category=Category.STALE,
            )
        planned = {_signature(a) for a in judgement.plan.actions}
        for action in task.actions:
            if _signature(action) not in planned:
                return Choice(
                    reason=(
                        f"the saved plan's {action.kind.value} of {verify.label(action)} is "
                        "not what the policies plan now: make a new plan"
                    ),
                    category=Category.STALE,
                )
        return Choice(list(task.actions))
    # Retry (and a resumed plan, part of which may be written): exactly the stored desired
    # state, re-checked against today's guards.
    return _missing(spec, task.actions, judgement, observed, fingerprints)


def remaining_problems(
    spec: JobSpec,
    applied: Sequence[Action],
    judgement: Judgement | None,
    observed: ObservedCluster,
    fingerprints: Fingerprints,
) -> list[str]:
    """What a written cluster still lacks after its wave (empty: it is fixed)."""
    problems = [why for _, why in verify.unmet(observed, applied, fingerprints)]
    if judgement is not None:
        for action in applied:
            if is_nudge(action):
                version = version_problem(judgement, action)
                if version is not None:
                    problems.append(version)
        if spec.mode is not Mode.RETRY:
            written = {key(a.resource_id) for a in applied}
            remaining, _ = filter_policy(judgement.plan.actions, spec.policy)
            for action in remaining:
                if key(action.resource_id) in written and not is_nudge(action):
                    problems.append(
                        f"{verify.label(action)} still needs {action.kind.value} "
                        f"({', '.join(str(r) for r in action.reasons)})"
                    )
    return list(dict.fromkeys(problems))

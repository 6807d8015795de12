"""Continuous enforcement: the automatic remediation job that follows a scheduled sweep
(``remediation.auto``; docs/enforcement.md).

One automatic job per policy that says ``remediation.auto``: a live job limited to that policy's
resources (``--policy`` semantics: its waves, its failure budget, its approvals) and to the
changes ``auto`` allows (``fleet.apply.auto``), capped at ``maxClustersPerRun`` clusters, with
the whole policy set as the desired state (another policy's settings still apply). It is
recorded like any job, its creator being the schedule (``schedule:<policy>``, via
``schedule``), and it honours the kill switch and the windows as any job does.

Where it runs: on the local engine ``fleet enforce`` (for cron) sweeps and then runs the
automatic jobs here (``run_local``); on Celery the beat's ``fleet.sweep.scheduled`` sweep carries
a ``then`` that its finaliser hands to ``submit_after_sweep``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from fleet.apply.auto import AutoJob
from fleet.apply.lifecycle import JobResult
from fleet.apply.spec import JobRequest, JobSpec
from fleet.apply.steps import record_job
from fleet.core.duties import Actor
from fleet.jobs.local import run_remediation
from fleet.jobs.preparing import make_edges, prepare
from fleet.jobs.runs import Environment
from fleet.policy.loading import PolicySet
from fleet.policy.models import Policy
from fleet.settings import Settings

#: The ``via`` of an automatic job's creator.
VIA = "schedule"


def auto_policies(policy_set: PolicySet, only: str | None = None) -> list[Policy]:
    """The enforce policies that say ``remediation.auto`` (just ``only``, when given)."""
    return [
        p
        for p in policy_set.policies
        if p.spec.remediation.auto is not None
        and p.spec.mode == "enforce"
        and (only is None or p.name == only)
    ]


def auto_request(
    policy: Policy, *, policy_paths: Sequence[str] = (), approval_timeout: float = 3600.0
) -> JobRequest:
    """The automatic job of ``policy`` (which says ``remediation.auto``)."""
    limits = policy.spec.remediation.auto
    assert limits is not None
    trigger = f"schedule:{policy.name}"
    return JobRequest(
        policy=policy.name,
        # The policy's own cap is the explicit raise of FLEET_MAX_CLUSTERS for this job.
        max_clusters=limits.max_clusters_per_run,
        approval_timeout=approval_timeout,
        policy_paths=tuple(policy_paths),
        requested_by=Actor(trigger, None, VIA),
        auto=AutoJob(limits, trigger),
    )


def run_local(
    env: Environment,
    policy_set: PolicySet,
    policy: Policy,
    *,
    policy_paths: Sequence[str] = (),
    approval_timeout: float = 3600.0,
    cancel: threading.Event | None = None,
) -> tuple[JobSpec, JobResult]:
    """Prepare, record and run one automatic job on this machine."""
    edges = make_edges(env)
    request = auto_request(policy, policy_paths=policy_paths, approval_timeout=approval_timeout)
    spec = prepare(env, edges, policy_set, request, cancel=cancel)
    record_job(edges.history, spec, principal=edges.principal)
    result = run_remediation(env, spec, edges, cancel=cancel, approval_timeout=approval_timeout)
    return spec, result


def after_sweep(policy_set: PolicySet, policy: str, settings: Settings) -> dict[str, Any] | None:
    """What a scheduled sweep of ``policy`` carries for its finaliser (None: no auto)."""
    from fleet.jobs.distributed import policies_document

    if not auto_policies(policy_set, policy):
        return None
    return {
        "policy": policy,
        "policies": policies_document(policy_set),
        "policyPaths": list(settings.policy_paths or ()),
    }


def submit_after_sweep(settings: Settings, then: dict[str, Any]) -> str | None:
    """Submit the automatic job a finished scheduled sweep carries; returns its id."""
    from fleet.jobs.distributed import policy_set_of, submit_remediation

    policy_set = policy_set_of(then["policies"])
    found = auto_policies(policy_set, str(then["policy"]))
    if not found:
        return None
    request = auto_request(found[0], policy_paths=then.get("policyPaths") or ())
    return submit_remediation(settings, policy_set, request)

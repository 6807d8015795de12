"""What a worker process builds once and shares between its task threads.

One ``AzureSession`` (credential, connection pool, and the Redis-backed ARM budget shared with
every other worker), one ``JobState``, one history database handle, the version catalogues,
and the policy sets of running jobs (by revision). Built lazily on first use, so importing the
tasks module costs nothing and ``celery inspect`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

from fleet.apply import secrets
from fleet.azure.catalogs import CatalogCache
from fleet.azure.credentials import principal_of
from fleet.azure.inventory import Inventory
from fleet.azure.session import AzureSession, credential_scope
from fleet.desired.fingerprints import Fingerprints
from fleet.jobs.runs import make_inventory
from fleet.policy.loading import PolicySet
from fleet.record.budget import RedisLimiter
from fleet.record.history import History, open_history
from fleet.record.jobstate import JobState
from fleet.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    session: AzureSession
    jobs: JobState
    history: History
    inventory: Inventory
    catalogs: CatalogCache
    principal: str
    #: The remediation tasks' context (``workers.remediation_flow.Context``), built on first use.
    flow: Any = None


_lock = threading.Lock()
_runtime: Runtime | None = None
_fingerprints: dict[str, Fingerprints] = {}


def runtime() -> Runtime:
    """The process's runtime, built on first use (thread-safe)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = _build(Settings())
        return _runtime


def _build(settings: Settings) -> Runtime:
    from fleet.azure.credentials import make_credential

    credential = make_credential(settings)
    principal = principal_of(credential, credential_scope(settings.arm_endpoint))
    f = settings.budget_fraction
    limiter = RedisLimiter(
        settings.redis_url,
        budgets={
            "reads": (settings.read_burst * f, settings.read_rate * f),
            "writes": (settings.write_burst * f, settings.write_rate * f),
            "deletes": (settings.delete_burst * f, settings.delete_rate * f),
        },
        principal=principal,
    )
    session = AzureSession(settings, credential=credential, limiter=limiter)
    from workers.metrics import arm_requests

    session.requests.listeners.append(
        lambda op, status: arm_requests.labels(op=op, status=str(status)).inc()
    )
    inventory = make_inventory(settings, session)
    return Runtime(
        settings=settings,
        session=session,
        jobs=JobState(settings.redis_url),
        history=open_history(settings),
        inventory=inventory,
        catalogs=CatalogCache(inventory),
        principal=principal,
    )


def fingerprints_for(job_id: str, policy_set: PolicySet) -> Fingerprints:
    """Desired (this worker's secret values) and applied (history) fingerprints, per job."""
    with _lock:
        found = _fingerprints.get(job_id)
    if found is not None:
        return found
    rt = runtime()
    fps = secrets.fingerprints_for(
        policy_set,
        secrets.fingerprint_key(rt.settings),
        rt.history.applied_fingerprints(None),
        rt.session.vaults(),
    )
    with _lock:
        if len(_fingerprints) > 64:
            _fingerprints.clear()
        _fingerprints[job_id] = fps
    return fps


class _CeleryDispatch:
    """Task messages through this worker's Celery app (routed to their queues by name)."""

    def send(self, task: str, args: tuple[Any, ...], *, countdown: float = 0) -> None:
        from workers.app import app

        app.send_task(task, args=list(args), countdown=countdown or None)


def context() -> Any:
    """The remediation tasks' context for this process (``workers.remediation_flow.Context``)."""
    from fleet.apply.spec import JobRequest
    from fleet.jobs import killswitch
    from fleet.jobs.distributed import policy_set_of
    from fleet.jobs.preparing import make_edges
    from fleet.jobs.runs import Environment
    from workers.remediation_flow import Context

    run = runtime()
    with _lock:
        if run.flow is not None:
            return run.flow
    env = Environment(run.settings, run.session, run.inventory, run.history)
    base = dataclasses.replace(make_edges(env), catalogs=run.catalogs)

    def edges(meta: dict[str, Any]) -> Any:
        timeout = JobRequest.from_json(meta.get("request") or {}).operation_timeout
        return env, dataclasses.replace(base, operation_timeout=timeout)

    built = Context(
        jobs=run.jobs,
        dispatch=_CeleryDispatch(),
        edges=edges,
        policy_set=policy_set_of,
        kill_switch=lambda: killswitch.for_writes(run.history, run.settings.redis_url),
        claim_ttl=run.settings.visibility_timeout,
    )
    with _lock:
        if run.flow is None:
            run.flow = built
        return run.flow

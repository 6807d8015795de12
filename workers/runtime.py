"""What a worker process builds once and shares between its task threads.

One ``AzureSession`` (credential, connection pool, and the Redis-backed ARM budget shared with
every other worker), one ``JobState``, one history database handle, the version catalogues,
and the policy sets of running jobs (by revision). Built lazily on first use, so importing the
tasks module costs nothing and ``celery inspect`` stays cheap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fleet.azure.credentials import principal_of
from fleet.azure.inventory import Inventory
from fleet.azure.session import AzureSession, credential_scope
from fleet.desired.fingerprints import Fingerprints
from fleet.jobs import secrets
from fleet.jobs.runs import make_inventory
from fleet.jobs.work import CatalogCache
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
        policy_set, secrets.fingerprint_key(rt.settings), rt.history.applied_fingerprints(None)
    )
    with _lock:
        if len(_fingerprints) > 64:
            _fingerprints.clear()
        _fingerprints[job_id] = fps
    return fps

"""Starting work from the API on the configured engine, exactly as the command line does.

With ``FLEET_BROKER_URL`` set the work goes to the Celery workers (``fleet.jobs.distributed``,
as ``--engine celery``); otherwise it runs on the local engine in background threads of the
server process, through the same functions as ``fleet sweep`` and ``fleet remediate``:
``run_sweep`` for a sweep; ``prepare`` → ``record_job`` → ``run_remediation`` for a job. Both
record the same history as the CLI, so a job started here is listed, approved, cancelled and
reported by ``fleet jobs`` too, and one started there by the API.

The API answers 202 with the id before the work begins (preparing a live job is a planning
sweep). Until a local job is recorded, ``pending`` says where it stands (``preparing``, or
``failed`` with the reason); a Celery job is in Redis until a worker records it.

A server that stops (a deploy, a crash) leaves its local jobs as a killed ``fleet remediate``
would: recorded, with their writes' continuation tokens. ``resume`` (``POST
/api/v1/jobs/{id}/resume``, or ``fleet remediate --resume``) continues one once its heartbeat is
older than three beats.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet.apply.spec import JobRequest
from fleet.apply.steps import record_job
from fleet.core.duties import Actor
from fleet.core.errors import CannotResume, FleetError, PrepareError
from fleet.jobs import distributed, killswitch
from fleet.jobs.local import check_resumable, run_remediation
from fleet.jobs.local import resume as resume_job
from fleet.jobs.preparing import load_spec, make_edges, prepare
from fleet.jobs.runs import environment, run_sweep, sweep_plan
from fleet.jobs.sweep import new_sweep_id
from fleet.policy.loading import PolicySet, load
from fleet.record.events import JOB_RESUME, SWEEP_START
from fleet.record.history import History
from fleet.record.jobstate import JobState
from fleet.settings import Settings

log = logging.getLogger(__name__)

#: Jobs whose preparation failed are remembered this many at a time (newest kept).
KEPT_FAILURES = 200


class Engine:
    """Sweeps, plans and remediation jobs started through the API."""

    def __init__(self, settings: Settings, policies: Sequence[Path], history: History) -> None:
        self.settings = settings
        self.policies = list(policies)
        self.history = history
        #: The Celery engine when a broker is configured, as for ``--engine celery``.
        self.celery = "broker_url" in settings.model_fields_set
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}

    @property
    def name(self) -> str:
        return "celery" if self.celery else "local"

    # -- what every start checks ------------------------------------------------------------

    def policy_set(self) -> PolicySet:
        """The server's policies, read again for every start (edits apply without a restart)."""
        if not self.policies:
            raise PrepareError(
                "the server has no policies: start it with --policies PATH (or FLEET_POLICIES)"
            )
        return load(self.policies)

    def _refuse_if_killed(self) -> None:
        killswitch.check(self.history, self.settings.redis_url if self.celery else None)

    def _background(self, name: str, target: Callable[[], None]) -> None:
        # Daemon threads: a server that stops leaves its jobs resumable, as a killed CLI does.
        thread = threading.Thread(target=target, name=f"fleet-api-{name}", daemon=True)
        with self._lock:
            self._threads[name] = thread
        thread.start()

    # -- sweeps and plans --------------------------------------------------------------------

    def start_sweep(self, actor: Actor) -> dict[str, Any]:
        """Start a sweep of the server's policies; its id is known at once."""
        self._refuse_if_killed()
        policy_set = self.policy_set()
        if self.celery:
            job_id = distributed.submit_sweep(self.settings, policy_set)
            sweep_id = str(JobState(self.settings.redis_url).meta(job_id).get("sweepId"))
        else:
            job_id, sweep_id = None, new_sweep_id(datetime.now(UTC))

            def run() -> None:
                try:
                    with environment(self.settings) as env:
                        run_sweep(env, policy_set, sweep_id=sweep_id, keep_judgements=False)
                except Exception:
                    log.exception("sweep %s failed", sweep_id)

            self._background(sweep_id, run)
        self.history.record_event(
            SWEEP_START, actor, job_id=job_id, detail={"sweepId": sweep_id, "engine": self.name}
        )
        return {"id": sweep_id, "job": job_id, "engine": self.name}

    def plan(self) -> dict[str, Any]:
        """A fresh plan of the server's policies (a recorded sweep; writes nothing), in the
        saved-plan format that ``POST /api/v1/jobs {"plan": ...}`` applies exactly."""
        self._refuse_if_killed()
        policy_set = self.policy_set()
        with environment(self.settings) as env:
            return sweep_plan(run_sweep(env, policy_set))

    # -- remediation jobs ---------------------------------------------------------------------

    def start_job(self, request: JobRequest) -> str:
        """Start a remediation job; returns its id (also its id in the history)."""
        self._refuse_if_killed()
        policy_set = self.policy_set()
        if self.celery:
            return distributed.submit_remediation(self.settings, policy_set, request)
        job_id = new_sweep_id(datetime.now(UTC))
        cancel = threading.Event()
        with self._lock:
            self._pending[job_id] = {
                "id": job_id,
                "status": "preparing",
                "engine": "local",
                "createdBy": request.requested_by.to_json() if request.requested_by else None,
            }
            self._cancels[job_id] = cancel
        self._background(job_id, lambda: self._run_job(job_id, request, policy_set, cancel))
        return job_id

    def _run_job(
        self, job_id: str, request: JobRequest, policy_set: PolicySet, cancel: threading.Event
    ) -> None:
        try:
            with environment(self.settings) as env:
                edges = make_edges(env, operation_timeout=request.operation_timeout)
                spec = prepare(env, edges, policy_set, request, cancel=cancel)
                spec.id = job_id
                record_job(edges.history, spec, principal=edges.principal)
                with self._lock:
                    self._pending.pop(job_id, None)
                run_remediation(
                    env, spec, edges, cancel=cancel, approval_timeout=request.approval_timeout
                )
        except KeyboardInterrupt:  # cancelled while planning: nothing was written
            self._failed(job_id, "cancelled while planning: nothing was written", "cancelled")
        except FleetError as exc:
            self._failed(job_id, str(exc))
        except Exception as exc:
            log.exception("job %s failed", job_id)
            self._failed(job_id, f"internal error: {exc.__class__.__name__}")
        finally:
            with self._lock:
                self._cancels.pop(job_id, None)
                self._threads.pop(job_id, None)

    def _failed(self, job_id: str, error: str, status: str = "failed") -> None:
        with self._lock:
            if job_id in self._pending:
                self._pending[job_id].update(status=status, error=error)
                failed = [k for k, v in self._pending.items() if v["status"] != "preparing"]
                for k in failed[:-KEPT_FAILURES]:
                    self._pending.pop(k, None)
        log.warning("job %s: %s", job_id, error)

    def pending(self, job_id: str) -> dict[str, Any] | None:
        """A job started here that is not recorded yet: preparing, or why it never started."""
        with self._lock:
            found = self._pending.get(job_id)
            if found is not None:
                return dict(found)
        if self.celery:
            try:
                meta = JobState(self.settings.redis_url).meta(job_id)
            except Exception:
                return None
            status = str(meta.get("status") or "queued")
            return {"id": job_id, "status": status, "engine": "celery", "error": meta.get("error")}
        return None

    def cancel_pending(self, job_id: str) -> bool:
        """Stop a local job that is still being prepared; False when there is none."""
        with self._lock:
            event = self._cancels.get(job_id)
            preparing = self._pending.get(job_id, {}).get("status") == "preparing"
        if event is None or not preparing:
            return False
        event.set()
        return True

    def resume(self, job_id: str, actor: Actor, *, approval_timeout: float = 3600.0) -> None:
        """Continue a local job whose process died (``fleet remediate --resume``)."""
        if self.celery:
            raise CannotResume("a Celery job is resumed by its workers, not by the API")
        job = self.history.get_job(self.history.find_job(job_id))
        assert job is not None
        check_resumable(job)
        paths = [Path(p) for p in (job.get("options") or {}).get("policies") or []]
        policy_set = load(paths or self.policies)
        if policy_set.revision != job.get("policyRevision"):
            raise CannotResume(
                f"the policies changed since job {job['id']} started: it cannot be resumed; "
                "start a retry of it instead"
            )
        self.history.record_event(JOB_RESUME, actor, job_id=job["id"])

        def run() -> None:
            try:
                with environment(self.settings) as env:
                    edges = make_edges(env)
                    spec = load_spec(
                        edges.history,
                        job["id"],
                        policy_set,
                        edges.fingerprint_key,
                        edges.session.vaults(),
                    )
                    spec.resumed = True
                    resume_job(env, spec, edges, approval_timeout=approval_timeout)
            except Exception:
                log.exception("resuming job %s failed", job["id"])

        self._background(str(job["id"]), run)

    def join(self, timeout: float = 5.0) -> None:
        """Wait a little for background work (tests; a server stopping leaves the rest)."""
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout)

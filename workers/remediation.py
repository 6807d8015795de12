"""Celery tasks of a remediation job: each a thin wrapper over ``workers.remediation_flow``.

The bodies (and the reasons for how a job is cut into tasks) are in ``remediation_flow``; here
they get this worker's context: its Redis job state, its Celery app as the dispatcher, and the
job's edges (ARM session, history database, catalogues) built once per process.
"""

from __future__ import annotations

from typing import Any

from workers import remediation_flow as flow
from workers import runtime as rt
from workers.app import app


@app.task(name=flow.START, bind=True)  # type: ignore[untyped-decorator]
def remediate_start(self: Any, job_id: str) -> None:
    """Prepare the job on this worker (plan, guards, waves), record it, start wave 0."""
    flow.start(rt.context(), job_id)


@app.task(name=flow.WAVE, bind=True)  # type: ignore[untyped-decorator]
def remediate_wave(self: Any, job_id: str, index: int) -> None:
    """Start a wave (after its approval, when it needs one), or finish the job."""
    flow.wave(rt.context(), job_id, index)


@app.task(name=flow.CLUSTER, bind=True)  # type: ignore[untyped-decorator]
def remediate_cluster(self: Any, job_id: str, index: int, cluster: str) -> None:
    """Re-read, re-judge and start writing one cluster."""
    flow.cluster(rt.context(), job_id, index, cluster)


@app.task(name=flow.POLL, bind=True)  # type: ignore[untyped-decorator]
def remediate_poll(self: Any, job_id: str, index: int, cluster: str) -> None:
    """Poll a cluster's running operation for a few seconds; come back later if it runs on."""
    flow.poll(rt.context(), job_id, index, cluster)


@app.task(name=flow.WAVE_WRITTEN, bind=True)  # type: ignore[untyped-decorator]
def remediate_wave_written(self: Any, job_id: str, index: int) -> None:
    """Every cluster of the wave is written: soak, then verify the written ones."""
    flow.wave_written(rt.context(), job_id, index)


@app.task(name=flow.VERIFY, bind=True)  # type: ignore[untyped-decorator]
def remediate_verify(self: Any, job_id: str, index: int, cluster: str) -> None:
    """Read a written cluster again: fixed, or failed with the reasons."""
    flow.verify(rt.context(), job_id, index, cluster)


@app.task(name=flow.VERIFY_WAVE, bind=True)  # type: ignore[untyped-decorator]
def remediate_verify_wave(self: Any, job_id: str, index: int) -> None:
    """The wave's written clusters through Resource Graph; ``verify`` for the rest."""
    flow.verify_wave(rt.context(), job_id, index)


@app.task(name=flow.RESUME, bind=True)  # type: ignore[untyped-decorator]
def remediate_resume(self: Any, job_id: str) -> int:
    """Send again what a stalled job waits for; returns how many messages were sent."""
    return flow.resume(rt.context(), job_id)

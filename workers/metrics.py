"""Prometheus metrics of a worker: tasks, ARM calls by status, throttling waits, job progress.

Workers run the threads pool (one process), so the default registry is enough; it is served
on ``FLEET_METRICS_PORT`` when set (``worker_init`` signal).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals
from prometheus_client import Counter, Gauge, start_http_server

log = logging.getLogger("fleet.workers")

task_outcomes = Counter(
    "fleet_worker_cluster_outcomes_total", "Clusters handled by this worker", ["kind", "outcome"]
)
task_runs = Counter(
    "fleet_worker_tasks_total", "Celery tasks run by this worker", ["task", "state"]
)
arm_requests = Counter(
    "fleet_worker_arm_requests_total",
    "HTTP attempts to ARM by operation class and status",
    ["op", "status"],
)
throttle_wait = Counter(
    "fleet_worker_arm_budget_wait_seconds_total", "Seconds spent waiting for the shared ARM budget"
)
job_progress = Gauge(
    "fleet_worker_job_done_clusters", "Clusters done in a job (as last seen)", ["job"]
)


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    from fleet.settings import Settings

    port = Settings().metrics_port
    if port:
        start_http_server(port, addr="0.0.0.0")
        log.info("metrics on :%d/metrics", port)


@signals.task_postrun.connect
def _count_task(sender: Any = None, state: str | None = None, **_: Any) -> None:
    task_runs.labels(task=getattr(sender, "name", "?"), state=state or "?").inc()

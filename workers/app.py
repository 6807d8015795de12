"""The Celery application, configured from fleet's settings (``FLEET_*``).

Choices and why (see docs/distributed.md):
- JSON only: messages carry job ids and cluster keys, never objects or secrets.
- ``acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged after it ran, and a
  worker killed mid-task gives its message back; tasks are idempotent (results are stored once).
- prefetch 1: a worker reserves only what it runs, so a killed worker strands one message.
- ``visibility_timeout`` above the longest task (tasks are short; LROs are start + poll tasks).
- Queues by kind of work: reads (sweeps), writes (remediation), polls (LRO polling), control
  (discovery, finalisers, schedules), so a big sweep never starves an admin's remediation.
- Results are ignored: the job state in Redis is the source of truth, not Celery's backend.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue

from fleet.settings import Settings

QUEUES = ("fleet.reads", "fleet.writes", "fleet.polls", "fleet.control")

ROUTES = {
    "fleet.sweep.judge": {"queue": "fleet.reads"},
    "fleet.sweep.start": {"queue": "fleet.control"},
    "fleet.sweep.finalize": {"queue": "fleet.control"},
    "fleet.sweep.scheduled": {"queue": "fleet.control"},
    "fleet.schedules.sync": {"queue": "fleet.control"},
    "fleet.jobs.watchdog": {"queue": "fleet.control"},
    "fleet.notify.tick": {"queue": "fleet.control"},
    "fleet.remediate.cluster": {"queue": "fleet.writes"},
    "fleet.remediate.poll": {"queue": "fleet.polls"},
    "fleet.remediate.verify": {"queue": "fleet.reads"},
    "fleet.remediate.verify_wave": {"queue": "fleet.reads"},
    "fleet.remediate.start": {"queue": "fleet.control"},
    "fleet.remediate.wave": {"queue": "fleet.control"},
    "fleet.remediate.wave_written": {"queue": "fleet.control"},
    "fleet.remediate.resume": {"queue": "fleet.control"},
}


def configuration(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for these settings."""
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        # kombu scans for messages of dead workers every interval × throttle seconds
        # (10 × 10 by default); scan every interval instead, so a message whose visibility
        # timeout has passed comes back within seconds, not minutes.
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
    }
    return {
        "broker_url": settings.broker_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "visibility_timeout": settings.visibility_timeout,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_queues": [
            Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES
        ],
        "task_default_exchange": "fleet.control",
        "task_default_routing_key": "fleet.control",
        "task_default_queue": "fleet.control",
        "task_routes": ROUTES,
        "task_create_missing_queues": False,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,  # for Flower; cheap
        "task_send_sent_event": True,
        "redbeat_redis_url": settings.redis_url,
        "redbeat_key_prefix": "fleet:redbeat",
        "beat_scheduler": "redbeat.RedBeatScheduler",
        "beat_schedule": {
            "fleet-sync-schedules": {"task": "fleet.schedules.sync", "schedule": 60.0},
            "fleet-watchdog": {"task": "fleet.jobs.watchdog", "schedule": 30.0},
            "fleet-notify": {"task": "fleet.notify.tick", "schedule": 60.0},
        },
        "timezone": "UTC",
        "enable_utc": True,
    }


def make_app(settings: Settings | None = None) -> Celery:
    """A Celery app for these settings; without them, the environment's ``FLEET_*`` settings
    are read when the configuration is first needed (a worker starting, a task sent), not
    when the module is imported, so importing the tasks never fails on the environment."""
    app = Celery("fleet", include=["workers.tasks", "workers.schedules", "workers.remediation"])
    if settings is not None:
        app.conf.update(configuration(settings))
    else:
        app.add_defaults(lambda: configuration(Settings()))
    return app


app = make_app()


@signals.setup_logging.connect
def _logging(**_: Any) -> None:
    """fleet's logging (stderr, redacted; JSON with FLEET_JSON_LOGS) instead of Celery's."""
    import logging

    from fleet.core.logs import configure

    # Celery's own INFO lines (ready, task received/succeeded) stay: operators rely on them.
    configure(level=logging.INFO, json_logs=Settings().json_logs, quiet=("azure", "urllib3"))

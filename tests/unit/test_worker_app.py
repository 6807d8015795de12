"""The Celery app reads the environment when its configuration is needed, not on import."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_importing_the_workers_reads_no_settings() -> None:
    # An invalid setting breaks only what needs the configuration, never the import.
    code = (
        "import workers.remediation, workers.tasks, workers.schedules\n"
        "from workers.app import app\n"
        "try:\n"
        "    app.conf.broker_url\n"
        "except Exception as exc:\n"
        "    print('lazy:', type(exc).__name__)\n"
    )
    env = {"FLEET_CONCURRENCY": "not-a-number", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "lazy: ValidationError" in done.stdout, done.stdout + done.stderr


def test_the_configuration_comes_from_the_settings() -> None:
    from fleet.settings import Settings
    from workers.app import configuration, make_app

    settings = Settings(broker_url="redis://127.0.0.1:1/5", visibility_timeout=40)
    app = make_app(settings)
    assert app.conf.broker_url == "redis://127.0.0.1:1/5"
    assert configuration(settings)["broker_transport_options"]["visibility_timeout"] == 40
    assert app.conf.task_acks_late and app.conf.worker_prefetch_multiplier == 1

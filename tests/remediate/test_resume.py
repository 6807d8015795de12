"""A local job killed in the middle of a long-running operation resumes it instead of orphaning it.

``fleet remediate`` persists every operation's continuation token before polling it. The job's
process is killed (SIGKILL: no clean-up) while operations run; ``fleet remediate --resume JOB``
then polls those very operations to their end from their tokens (nothing is sent twice), records
how they ended, and finishes the job's waves.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fleet.core.errors import SchemaOutOfDate
from fleet.record.history import History
from tests.conftest import POLICIES, REPO
from tests.helpers.cli import FLEET_COMMAND, fleet_process, remediate_args
from tests.remediate.conftest import env_for


def _writes(db: str) -> list[dict[str, Any]]:
    try:
        with History(db) as history:
            return history.writes()
    except SchemaOutOfDate:
        return []


def test_a_killed_job_resumes_its_operations(start: Any, tmp_path: Path) -> None:
    # Operations never finish on their own (no poll count, and emulated time stands still
    # unless the test moves it): the job is certain to die with operations running.
    with start(lro_polls=None, lro_seconds=60) as emu:
        env = env_for(emu, tmp_path / "state")
        db = env["FLEET_DATABASE_URL"]
        proc = fleet_process(remediate_args(POLICIES, "--policy", "platform-baseline"), env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = [w for w in _writes(db) if w["outcome"] == "running"]
            if running and all(w["continuationToken"] for w in running):
                break
            time.sleep(0.1)
        assert running, "no operation was running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        job_id = running[0]["jobId"]
        orphans = {w["id"]: w["resourceId"].lower() for w in running}

        # Freshly killed, the job looks alive (its heartbeat is young): refused without --force.
        alive = subprocess.run(
            [sys.executable, "-m", "fleet", "remediate", "--resume", job_id],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert alive.returncode == 2 and "--force" in alive.stderr, alive.stderr

        # Emulated time moves on while the job resumes: its operations end.
        stop = threading.Event()

        def tick() -> None:
            while not stop.is_set():
                emu.admin.advance_clock(120)
                stop.wait(0.3)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            resumed = subprocess.run(
                [*FLEET_COMMAND, "remediate", "--resume", job_id, "--force", "-o", "json"],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            stop.set()
            ticker.join(5)
        assert resumed.returncode == 0, resumed.stderr
        report = json.loads(resumed.stdout)
        assert report["job"]["id"] == job_id
        assert report["job"]["status"] in ("succeeded", "completed")

        writes = _writes(db)
        by_id = {w["id"]: w for w in writes}
        # the operations the dead process left running ended, polled from their tokens...
        assert all(by_id[i]["outcome"] == "succeeded" for i in orphans), [by_id[i] for i in orphans]
        # ...and were never sent again
        sent = Counter(w["resourceId"].lower() for w in writes if w["outcome"] != "abandoned")
        assert all(sent[r] == 1 for r in orphans.values()), sent
        with History(db) as history:
            rows = history.job_clusters(job_id)
        assert not [r for r in rows if r["status"] in ("pending", "applied")], rows
        assert {r["status"] for r in rows} & {"fixed"}

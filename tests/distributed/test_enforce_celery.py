"""Continuous enforcement on Celery: the beat's ``fleet.sweep.scheduled`` sweep is followed by
the policy's automatic job, with no person and no CLI involved.

The test sends ``fleet.sweep.scheduled`` as the beat would (real redis-server, a real worker
process reading the policies from ``FLEET_POLICY_PATHS``), twice: between the two, a cluster
is added to the emulator and an existing one drifts. After the second sweep the new cluster has
its extension and flux configuration; the drifted one is untouched (``auto`` creates only).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from fleet.apply.lifecycle import ENDED, JobStatus
from fleet.core.errors import SchemaOutOfDate
from fleet.emulator.generate import generate
from fleet.emulator.testing import running_emulator
from fleet.jobs.distributed import client
from fleet.record.history import History
from fleet.settings import Settings
from tests.distributed.conftest import RedisServer, Workers, distributed_env
from tests.enforce.conftest import FAST, aks_clusters, children, new_aks, write_policy
from tests.enforce.test_enforce import AUTO, _branch, _drift_branch

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _ended_jobs(database: str, wanted: int, deadline: float) -> list[dict[str, Any]]:
    """The automatic jobs once ``wanted`` of them ended (oldest first)."""
    while time.monotonic() < deadline:
        try:
            with History(database) as history:
                jobs = [
                    j for j in history.jobs(kind="remediation") if JobStatus(j["status"]) in ENDED
                ]
        except SchemaOutOfDate:
            jobs = []
        if len(jobs) >= wanted:
            return sorted(jobs, key=lambda j: str(j["id"]))
        time.sleep(0.3)
    raise AssertionError(f"fewer than {wanted} automatic jobs ended")


def test_the_scheduled_sweep_starts_the_automatic_job(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    policies = write_policy(tmp_path, AUTO)
    with running_emulator(generate(clusters=8, subscriptions=1, seed=11), **FAST) as emu:
        env = distributed_env(
            emu, redis_server.url, tmp_path / "state", FLEET_POLICY_PATHS=str(policies)
        )
        workers = Workers(env, tmp_path)
        beat = client(Settings(broker_url=redis_server.url, _env_file=None))  # type: ignore[call-arg]
        try:
            workers.start("enforce", concurrency=8)
            beat.send_task("fleet.sweep.scheduled", args=["auto-apps"], queue="fleet.control")
            first = _ended_jobs(env["FLEET_DATABASE_URL"], 1, time.monotonic() + 120)[0]
            existing = aks_clusters(emu)
            drifted = next(
                c["id"]
                for c in existing
                if "fluxconfigurations/auto-apps" in children(emu, c["id"])
            )
            _drift_branch(emu, drifted)
            new = new_aks(emu, existing[0], "aks-new-00077")
            beat.send_task("fleet.sweep.scheduled", args=["auto-apps"], queue="fleet.control")
            second = _ended_jobs(env["FLEET_DATABASE_URL"], 2, time.monotonic() + 120)[1]
        finally:
            workers.stop_all()
        assert first["id"] != second["id"]
        assert {"extensions/flux", "fluxconfigurations/auto-apps"} <= set(children(emu, new))
        assert _branch(emu, drifted) == "dev"
        with History(env["FLEET_DATABASE_URL"]) as history:
            job = history.get_job(second["id"])
            assert job is not None
            assert job["options"]["engine"] == "celery"
            assert job["options"]["createdBy"]["name"] == "schedule:auto-apps"
            rows = {r["clusterId"].lower(): r for r in history.job_clusters(second["id"])}
            sweeps = [s for s in history.sweeps() if s["sweep"]["engine"] == "celery"]
        assert rows[new.lower()]["status"] == "fixed"
        assert (rows[drifted.lower()]["outcome"] or {}).get("category") == "auto-limits"
        assert len(sweeps) >= 2  # each automatic job followed a recorded scheduled sweep

"""The distributed engine under failure: a worker killed mid-sweep, Redis restarted mid-job,
a job cancelled. Each job ends with exactly one outcome per targeted cluster, or fails loudly —
never a partial result passed off as complete.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.core.errors import JobFailed
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from fleet.jobs.distributed import client, follow, submit_sweep, sweep_report
from fleet.policy.loading import load
from fleet.record.history import History
from fleet.record.jobstate import JobState
from fleet.settings import Settings
from tests.conftest import POLICIES
from tests.distributed.conftest import RedisServer, Workers, distributed_env

CLUSTERS = 80


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[RunningEmulator]:
    """Every request takes ~150 ms, so a sweep lasts long enough to be hurt in the middle."""
    snapshot = generate(clusters=CLUSTERS, subscriptions=2, seed=31)
    with running_emulator(
        snapshot, throttle="off", retry_after=0, latency_ms=150, latency_p99_ms=300, seed=1
    ) as emu:
        yield emu


def settings_for(env: dict[str, str]) -> Settings:
    return Settings(
        **{k[len("FLEET_") :].lower(): v for k, v in env.items() if k.startswith("FLEET_")}
    )


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


class Rig(NamedTuple):
    """A distributed engine on the slow emulator: its environment, settings, workers, state."""

    env: dict[str, str]
    settings: Settings
    workers: Workers
    jobs: JobState


@pytest.fixture
def rig(slow_emulator: RunningEmulator, redis_server: RedisServer, tmp_path: Path) -> Rig:
    # Workers are started and stopped by each test: when they stop is part of what it checks.
    env = distributed_env(slow_emulator, redis_server.url, tmp_path)
    return Rig(env, settings_for(env), Workers(env, tmp_path), JobState(redis_server.url))


def test_a_worker_killed_mid_sweep_loses_nothing_and_counts_nothing_twice(rig: Rig) -> None:
    _, settings, workers, jobs = rig
    try:
        victim = workers.start("victim", concurrency=4)
        workers.start("survivor", concurrency=4)
        job_id = submit_sweep(settings, load([POLICIES]), jobs=jobs)
        wait_for(lambda: jobs.counts(job_id).get("done", 0) >= 10)
        victim.kill()  # SIGKILL: its reserved and running tasks are never acknowledged
        # The follower notices the stall and re-sends the missing clusters (idempotently).
        meta = follow(jobs, job_id, timeout=120, stall_seconds=4, app=client(settings))
    finally:
        workers.stop_all()
    assert meta["status"] == "complete"
    counts = jobs.counts(job_id)
    assert counts["total"] == CLUSTERS
    assert counts["done"] == CLUSTERS  # each cluster counted exactly once
    report = sweep_report(jobs, job_id, meta)
    assert len(report["clusters"]) == CLUSTERS
    assert len({c["id"] for c in report["clusters"]}) == CLUSTERS
    assert report["sweep"]["complete"] is True
    # the redelivered work was done by the survivor after the visibility timeout
    assert "fleet.sweep.judge" in workers.started[1].log.read_text()


def test_redis_restart_mid_job_fails_loudly_and_records_nothing_as_complete(
    rig: Rig, redis_server: RedisServer
) -> None:
    _, settings, workers, jobs = rig
    try:
        workers.start("w1", concurrency=4)
        job_id = submit_sweep(settings, load([POLICIES]), jobs=jobs)
        wait_for(lambda: jobs.counts(job_id).get("done", 0) >= 5)
        redis_server.restart()  # no persistence: the job's state is gone
        with pytest.raises(JobFailed, match=r"no state|lost|unreachable"):
            follow(jobs, job_id, timeout=90)
        # the workers survive the outage and serve new jobs
        again = submit_sweep(settings, load([POLICIES]), jobs=jobs)
        meta = follow(jobs, again, timeout=120)
        assert meta["status"] == "complete"
        assert jobs.counts(again)["done"] == CLUSTERS
    finally:
        workers.stop_all()
    with History(settings.effective_database_url) as history:
        recorded = history.sweeps()
    # only the second job's sweep is recorded as complete; the first never finalised
    assert [s["sweep"]["complete"] for s in recorded] == [True]


def test_cancel_stops_new_work_within_seconds(rig: Rig, slow_emulator: RunningEmulator) -> None:
    env, settings, workers, jobs = rig
    try:
        workers.start("w1", concurrency=2)
        job_id = submit_sweep(settings, load([POLICIES]), jobs=jobs)
        wait_for(lambda: jobs.counts(job_id).get("done", 0) >= 2)
        # from any terminal: the job is in the history database like a local one
        listed = CliRunner().invoke(app, ["jobs", "list", "-o", "json"], env=env)
        assert job_id in listed.stdout
        result = CliRunner().invoke(app, ["jobs", "cancel", job_id], env=env)
        assert result.exit_code == 0, result.stderr
        cancelled_at = time.monotonic()
        slow_emulator.admin.reset_stats()
        meta = follow(jobs, job_id, timeout=60)
        stopped_after = time.monotonic() - cancelled_at
    finally:
        workers.stop_all()
    assert meta["status"] == "cancelled"
    assert stopped_after < 15
    counts = jobs.counts(job_id)
    assert counts.get("cancelled", 0) > 0
    assert counts["done"] == counts["total"]  # every cluster has one outcome: judged or cancelled
    # after the cancel only in-flight clusters finished their reads: a handful, not the rest
    assert slow_emulator.admin.stats()["requests"]["total"] < 4 * 10
    report = sweep_report(jobs, job_id, meta)
    assert report["sweep"]["complete"] is False


def test_follow_notices_a_cancel_from_ctrl_c(redis_server: RedisServer) -> None:
    jobs = JobState(redis_server.url)
    jobs.create("sweep-test-stop", "sweep", {"now": "2026-01-01T00:00:00+00:00"})
    stop = threading.Event()
    stop.set()
    with pytest.raises(JobFailed):
        follow(jobs, "sweep-test-stop", stop=stop, timeout=1.5, poll=0.1)
    assert jobs.cancelled("sweep-test-stop")

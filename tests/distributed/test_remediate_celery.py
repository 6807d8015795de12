"""Remediation through real Celery workers: same outcomes as the local engine, and safe when a
worker dies in the middle."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.core.errors import JobFailed
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from fleet.jobs.distributed import client, follow, submit_remediation
from fleet.policy.loading import load
from fleet.record.history import History
from fleet.record.jobstate import JobState
from fleet.settings import Settings
from tests.conftest import POLICIES, emulator_env
from tests.distributed.conftest import RedisServer, Workers, distributed_env

CLUSTERS = 40


def fleet() -> dict[str, Any]:
    return generate(clusters=CLUSTERS, subscriptions=2, seed=41)


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(fleet(), throttle="off", retry_after=0, lro_polls=1) as emu:
        yield emu


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"].lower(): c["status"] for c in report["clusters"]}


def verdicts(report: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {
        c["id"].lower(): (c["state"], sorted(f["code"] for f in c["findings"]))
        for c in report["clusters"]
    }


def remediate_and_sweep(env: dict[str, str], engine: str) -> tuple[dict[str, Any], dict[str, Any]]:
    runner = CliRunner()
    args = ["remediate", "-p", str(POLICIES), "--yes", "-o", "json", "--engine", engine]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.stderr + result.stdout
    swept = runner.invoke(app, ["sweep", "-p", str(POLICIES), "-o", "json"], env=env)
    assert swept.exit_code == 0, swept.stderr
    return json.loads(result.stdout), json.loads(swept.stdout)


def test_celery_remediation_matches_the_local_engine(
    emulator: RunningEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = distributed_env(emulator, redis_server.url, tmp_path / "celery")
    workers = Workers(env, tmp_path)
    try:
        workers.start("w1")
        workers.start("w2")
        remote_job, remote_after = remediate_and_sweep(env, "celery")
    finally:
        workers.stop_all()
    with running_emulator(fleet(), throttle="off", retry_after=0, lro_polls=1) as twin:
        local_job, local_after = remediate_and_sweep(
            emulator_env(twin, tmp_path / "local"), "local"
        )

    assert remote_job["job"]["engine"] == "celery"
    assert remote_job["summary"]["fixed"] > 0
    assert remote_job["summary"] == local_job["summary"]
    assert statuses(remote_job) == statuses(local_job)
    assert verdicts(remote_after) == verdicts(local_after)
    # the audit trail of the distributed job is in the history like a local job's
    with History(env["FLEET_DATABASE_URL"]) as h:
        writes = h.writes(remote_job["job"]["id"])
    assert writes and all(w["outcome"] == "succeeded" for w in writes)
    assert all(w["correlationId"] for w in writes)


def test_with_the_graph_inventory_both_engines_verify_through_resource_graph_alike(
    emulator: RunningEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    # verify_wave: the Celery engine checks a wave through Resource Graph, as the local one
    # does, and ends with the same outcomes; only the clusters the graph does not show fixed
    # are read from ARM (none here).
    env = distributed_env(emulator, redis_server.url, tmp_path / "celery", FLEET_INVENTORY="graph")
    workers = Workers(env, tmp_path)
    try:
        workers.start("w1")
        remote_job, remote_after = remediate_and_sweep(env, "celery")
    finally:
        workers.stop_all()
    with running_emulator(fleet(), throttle="off", retry_after=0, lro_polls=1) as twin:
        local_job, local_after = remediate_and_sweep(
            emulator_env(twin, tmp_path / "local", FLEET_INVENTORY="graph"), "local"
        )
    assert remote_job["summary"]["fixed"] > 0
    assert remote_job["summary"] == local_job["summary"]
    assert statuses(remote_job) == statuses(local_job)
    assert verdicts(remote_after) == verdicts(local_after)
    assert local_job["reads"]["verify"] == 0


def test_a_worker_killed_mid_remediation_leaves_one_outcome_per_cluster(
    emulator: RunningEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = distributed_env(emulator, redis_server.url, tmp_path)
    settings = Settings(**{k[6:].lower(): v for k, v in env.items() if k.startswith("FLEET_")})
    emulator.admin.add_fault(action="delay", method="PUT", delaySeconds=0.4, count=None)
    workers = Workers(env, tmp_path)
    jobs = JobState(redis_server.url)
    try:
        victim = workers.start("victim", concurrency=4)
        workers.start("survivor", concurrency=4)
        job_id = submit_remediation(settings, load([POLICIES]), jobs=jobs)
        deadline = time.monotonic() + 60
        while jobs.counts(job_id).get("done", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        victim.kill()
        try:
            # as the CLI follows a job: what a dead worker took with it is sent again after
            # a stall (the Redis transport can lose a message popped by a killed worker)
            meta = follow(jobs, job_id, timeout=240, stall_seconds=20, app=client(settings))
        except Exception:  # say where it stuck, for whoever reads the failure
            meta = {k: v for k, v in jobs.meta(job_id).items() if k != "policies"}
            print("counts", jobs.counts(job_id), "meta", meta)
            print("steps", jobs.stepping(job_id))
            raise
    finally:
        workers.stop_all()
    assert meta["status"] == "complete"
    with History(settings.effective_database_url) as history:
        rows = history.job_clusters(job_id)
        writes = history.writes(job_id)
    # every cluster of the job has exactly one final status
    assert len({r["clusterId"].lower() for r in rows}) == len(rows)
    unfinished = [r for r in rows if r["status"] in ("pending", "applied")]
    assert not unfinished, unfinished
    # no two writes to the same resource overlapped in time (the per-cluster lock)
    by_resource: dict[str, list[tuple[str, str]]] = {}
    for w in writes:
        by_resource.setdefault(w["resourceId"].lower(), []).append(
            (w["startedAt"], w["finishedAt"] or w["startedAt"])
        )
    for spans in by_resource.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, spans


def test_a_lost_message_is_sent_again_when_the_job_stalls(
    emulator: RunningEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The Redis transport can lose a message for good (a worker killed between popping it and
    recording it unacknowledged): no visibility timeout brings it back. Lose the first wave's
    verifications on purpose; following the job with a stall limit, as the CLI does, resumes
    it (``fleet.remediate.resume``) and it ends with one outcome per cluster."""
    env = distributed_env(emulator, redis_server.url, tmp_path)
    settings = Settings(**{k[6:].lower(): v for k, v in env.items() if k.startswith("FLEET_")})
    workers = Workers(env, tmp_path)
    jobs = JobState(redis_server.url)
    try:
        # nobody consumes the reads queue yet, so the verifications wait there
        workers.start("writer", concurrency=4, queues="fleet.control,fleet.writes,fleet.polls")
        job_id = submit_remediation(settings, load([POLICIES]), jobs=jobs)
        deadline = time.monotonic() + 60
        while jobs.redis.llen("fleet.reads") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert jobs.redis.llen("fleet.reads") >= 2, "the first wave's verifications never came"
        jobs.redis.delete("fleet.reads")  # lost
        workers.start("reader", concurrency=4)
        with pytest.raises(JobFailed):  # nothing else brings them back
            follow(jobs, job_id, timeout=8)
        meta = follow(jobs, job_id, timeout=120, stall_seconds=3, app=client(settings))
    finally:
        workers.stop_all()
    assert meta["status"] == "complete"
    assert meta["summary"]["summary"]["fixed"] > 0
    with History(settings.effective_database_url) as history:
        rows = history.job_clusters(job_id)
    assert len({r["clusterId"].lower() for r in rows}) == len(rows)
    unfinished = [r for r in rows if r["status"] in ("pending", "applied")]
    assert not unfinished, unfinished

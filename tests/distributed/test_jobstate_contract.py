"""``JobState`` (Redis) and its in-memory twin obey one contract, checked here on both.

The twin is what the Celery task bodies are unit-tested with; if it ever disagreed with Redis
those tests would prove nothing, so every behaviour the bodies rely on is asserted against a
real redis-server and the twin alike: stored-once outcomes, set counts, claims, flags, locks,
the completion claim, and that every key a job writes expires.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from fleet.core.errors import JobStateLost
from fleet.record.jobstate import JobState
from fleet.record.jobstate_memory import MemoryJobState
from tests.distributed.conftest import RedisServer

_ids = itertools.count()


@pytest.fixture(params=["redis", "memory"])
def jobs(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[object]:
    if request.param == "redis":
        yield JobState(redis_server.url, ttl=600)
    else:
        yield MemoryJobState(ttl=600)


def new_job(jobs: JobState | MemoryJobState) -> str:
    job_id = f"contract-{next(_ids)}-{id(jobs)}"
    jobs.create(job_id, "remediate", {"policies": {"revision": "r"}})
    return job_id


def test_meta_counts_and_lost_state(jobs: JobState | MemoryJobState) -> None:
    job = new_job(jobs)
    assert jobs.meta(job)["status"] == "queued" and jobs.exists(job)
    jobs.set_meta(job, status="running", wave=2)
    assert jobs.status(job) == "running" and jobs.meta(job)["wave"] == 2
    assert jobs.counts(job) == {"total": -1, "done": 0}
    assert jobs.incr(job, "failures") == 1 and jobs.incr(job, "failures", 2) == 3
    jobs.set_counts(job, **{"w0:total": 4})
    assert jobs.counts(job)["w0:total"] == 4
    assert job in jobs.jobs()
    with pytest.raises(JobStateLost):
        jobs.meta("no-such-job")


def test_results_are_stored_and_counted_once(jobs: JobState | MemoryJobState) -> None:
    job = new_job(jobs)
    assert jobs.record(job, "c1", {"status": "fixed"}, counter="status:fixed")
    assert not jobs.record(job, "c1", {"status": "failed"}, counter="status:failed")
    assert jobs.result(job, "c1") == {"status": "fixed"} and jobs.has_result(job, "c1")
    assert jobs.counts(job)["done"] == 1 and jobs.counts(job)["status:fixed"] == 1
    assert "status:failed" not in jobs.counts(job)
    assert dict(jobs.results(job)) == {"c1": {"status": "fixed"}}


def test_written_outcomes_and_steps(jobs: JobState | MemoryJobState) -> None:
    job = new_job(jobs)
    assert jobs.written(job, "c1") is None
    assert jobs.store_written(job, "c1", {"n": 1}) == {"n": 1}
    assert jobs.store_written(job, "c1", {"n": 2}) == {"n": 1}  # the first copy's wins
    assert jobs.all_written(job) == {"c1": {"n": 1}}
    jobs.set_step(job, "c2", {"step": 0})
    assert jobs.step(job, "c2") == {"step": 0} and jobs.stepping(job) == {"c2"}
    jobs.clear_step(job, "c2")
    assert jobs.step(job, "c2") is None and jobs.stepping(job) == set()


def test_sets_claims_flags_and_completion(jobs: JobState | MemoryJobState) -> None:
    job = new_job(jobs)
    assert jobs.enter(job, "w0", "a") == (True, 1)
    assert jobs.enter(job, "w0", "a") == (False, 1)
    assert jobs.join(job, "w0", "b") == 2 and jobs.members(job, "w0") == {"a", "b"}
    assert jobs.claim(job, "x", ttl=30) and not jobs.claim(job, "x", ttl=30)
    jobs.release(job, "x")
    assert jobs.claim(job, "x", ttl=30)
    assert not jobs.flagged(job, "w0:done")
    jobs.flag(job, "w0:done")
    assert jobs.flagged(job, "w0:done")
    assert not jobs.cancelled(job)
    jobs.cancel(job)
    assert jobs.cancelled(job)
    assert not jobs.claim_completion(job)  # not discovered yet
    jobs.discovered(job, 1)
    assert not jobs.claim_completion(job)  # nothing done yet
    jobs.record(job, "c", {})
    assert jobs.claim_completion(job) and not jobs.claim_completion(job)


def test_cluster_locks_are_per_job_and_reentrant(jobs: JobState | MemoryJobState) -> None:
    cluster = f"/subscriptions/x/c-{next(_ids)}"
    assert jobs.lock_cluster(cluster, "job-a", ttl_seconds=60)
    assert jobs.lock_cluster(cluster, "job-a", ttl_seconds=60)
    assert not jobs.lock_cluster(cluster, "job-b", ttl_seconds=60)
    assert jobs.cluster_lock_holder(cluster) == "job-a"
    jobs.unlock_cluster(cluster, "job-b")  # not its lock: nothing happens
    assert jobs.cluster_lock_holder(cluster) == "job-a"
    jobs.unlock_clusters([cluster], "job-a")
    assert jobs.cluster_lock_holder(cluster) is None


def test_every_key_a_job_writes_expires(jobs: JobState | MemoryJobState) -> None:
    job = new_job(jobs)
    jobs.add_targets(job, {"c1": {"id": "c1"}})
    jobs.record(job, "c1", {"status": "fixed"})
    jobs.store_written(job, "c1", {"status": "applied"})
    jobs.set_step(job, "c2", {"step": 0})
    jobs.join(job, "w0:verified", "c1")
    jobs.claim(job, "cluster:c1", ttl=30)
    jobs.flag(job, "w0:done")
    jobs.cancel(job)
    jobs.incr(job, "failures")
    expiries = jobs.expiries(job)
    parts = {k.removeprefix(JobState.key(job)) for k in expiries}
    assert {"", ":targets", ":results", ":written", ":steps", ":counts", ":cancel"} <= parts
    assert {":set:w0:verified", ":claim:cluster:c1", ":flag:w0:done"} <= parts
    assert all(0 < ttl <= 600 for ttl in expiries.values()), expiries


def test_the_twin_forgets_expired_keys() -> None:
    now = [1000.0]
    jobs = MemoryJobState(ttl=10, clock=lambda: now[0])
    job = new_job(jobs)
    jobs.claim(job, "x", ttl=5)
    now[0] += 6
    assert jobs.claim(job, "x", ttl=5)  # the old claim expired
    now[0] += 11
    assert not jobs.exists(job)

"""Job state in Redis for the distributed engine: one class owns every key a job writes.

A Celery job (a sweep or a remediation) is not a chord: it is a handful of Redis keys that every
worker and the submitting CLI read and write, all created, refreshed and expired here (nothing
else in fleet names a key). Every key of a job shares the prefix ``fleet:job:{id}`` and expires
``ttl`` seconds after its last write, so an abandoned job cleans itself up; the durable record is
the history database.

    fleet:job:{id}             hash    meta (kind, status, policies JSON, options, timestamps)
    fleet:job:{id}:targets     hash    cluster key -> target JSON (facts)
    fleet:job:{id}:results     hash    cluster key -> final outcome JSON (a verdict, or a
                                       remediation outcome)
    fleet:job:{id}:counts      hash    total, done, per-state and per-wave counters (HINCRBY)
    fleet:job:{id}:cancel      string  present when cancelled
    fleet:job:{id}:final       string  SET NX by whoever enqueues the finaliser (exactly once)
    fleet:job:{id}:written     hash    remediation: cluster key -> outcome after its writes
    fleet:job:{id}:steps       hash    remediation: cluster key -> the write under way
    fleet:job:{id}:set:{name}  set     members counted once (``join``)
    fleet:job:{id}:claim:{n}   string  a short claim (one copy of a task at a time)
    fleet:job:{id}:flag:{n}    string  a step that happened (a wave done, verifications sent)
    fleet:jobs                 zset    job id -> created timestamp (``fleet jobs list``)
    fleet:lock:cluster:{key}   string  the job id holding the cluster (writes only)
    fleet:guard:{name}         string  installation-wide guards (a scheduled sweep running)

Idempotency: a result is stored with HSETNX and counted only when it was new, so a redelivered
task message never counts a cluster twice. ``fleet.record.jobstate_memory.MemoryJobState`` is an
in-memory twin with the same methods and meaning, so task bodies can be tested as plain calls.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import redis

from fleet.core.errors import JobStateLost

PREFIX = "fleet"
DEFAULT_TTL = 7 * 24 * 3600
#: The parts of a job refreshed together whenever its meta changes.
_PARTS = ("", "targets", "results", "counts", "cancel", "final", "written", "steps")

_COMPLETE = """
-- KEYS[1] counts, KEYS[2] final flag; ARGV[1] ttl
-- Returns 1 exactly once: when discovery is over and every target has an outcome.
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '-1')
local done = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
local discovered = redis.call('HGET', KEYS[1], 'discovered')
if discovered == '1' and total >= 0 and done >= total then
  if redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then
    return 1
  end
end
return 0
"""

# Store an outcome and count it in one step: a worker killed between the two would leave a
# result nobody counts (a job that never reaches its total) or a count without a result.
_RECORD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'done', 1)
redis.call('HSET', KEYS[2], 'updated', ARGV[3])
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[4], 1) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return 1
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def new_job_id(kind: str) -> str:
    return f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def _lost(job_id: str, what: str = "state") -> JobStateLost:
    return JobStateLost(f"job {job_id} has no {what} in Redis (expired, or Redis lost its data)")


class JobState:
    """Access to the Redis state of jobs. Thread-safe (redis-py's client pools connections)."""

    def __init__(self, url: str, *, ttl: int = DEFAULT_TTL) -> None:
        # decode_responses makes every reply a str; redis-py's stubs cannot express that.
        self.redis: Any = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        self.ttl = ttl
        self._complete = self.redis.register_script(_COMPLETE)
        self._record = self.redis.register_script(_RECORD)
        self._unlock = self.redis.register_script(_UNLOCK)

    # -- keys -------------------------------------------------------------------------------
    @staticmethod
    def key(job_id: str, part: str = "") -> str:
        return f"{PREFIX}:job:{job_id}" + (f":{part}" if part else "")

    @staticmethod
    def _lock_key(cluster: str) -> str:
        return f"{PREFIX}:lock:cluster:{cluster.lower()}"

    def _touch(self, job_id: str, pipe: Any) -> None:
        for part in _PARTS:
            pipe.expire(self.key(job_id, part), self.ttl)

    def expiries(self, job_id: str) -> dict[str, int]:
        """Every key of the job and its time to live in seconds (-1: it never expires)."""
        return {
            k: int(self.redis.ttl(k))
            for pattern in (self.key(job_id), self.key(job_id, "*"))
            for k in self.redis.scan_iter(match=pattern, count=500)
        }

    # -- lifecycle --------------------------------------------------------------------------
    def create(self, job_id: str, kind: str, meta: Mapping[str, Any]) -> None:
        now = time.time()
        fields = {k: json.dumps(v) for k, v in meta.items()}
        fields.update(
            {"kind": json.dumps(kind), "status": json.dumps("queued"), "created": json.dumps(now)}
        )
        pipe = self.redis.pipeline()
        pipe.hset(self.key(job_id), mapping=fields)
        pipe.hset(self.key(job_id, "counts"), mapping={"total": -1, "done": 0})
        pipe.zadd(f"{PREFIX}:jobs", {job_id: now})
        self._touch(job_id, pipe)
        pipe.execute()

    def exists(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.key(job_id)))

    def meta(self, job_id: str) -> dict[str, Any]:
        raw = self.redis.hgetall(self.key(job_id))
        if not raw:
            raise _lost(job_id)
        return {k: json.loads(v) for k, v in raw.items()}

    def set_meta(self, job_id: str, **fields: Any) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self.key(job_id), mapping={k: json.dumps(v) for k, v in fields.items()})
        self._touch(job_id, pipe)
        pipe.execute()

    def status(self, job_id: str) -> str:
        value = self.redis.hget(self.key(job_id), "status")
        if value is None:
            raise _lost(job_id)
        return str(json.loads(value))

    def jobs(self, limit: int = 50) -> list[str]:
        return list(self.redis.zrevrange(f"{PREFIX}:jobs", 0, limit - 1))

    # -- targets and results ----------------------------------------------------------------
    def add_targets(self, job_id: str, targets: Mapping[str, Any]) -> None:
        if not targets:
            return
        pipe = self.redis.pipeline()
        pipe.hset(
            self.key(job_id, "targets"), mapping={k: json.dumps(v) for k, v in targets.items()}
        )
        self._touch(job_id, pipe)
        pipe.execute()

    def targets(self, job_id: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        if not keys:
            return {}
        values = self.redis.hmget(self.key(job_id, "targets"), keys)
        return {k: json.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def target_keys(self, job_id: str) -> list[str]:
        return list(self.redis.hkeys(self.key(job_id, "targets")))

    def discovered(self, job_id: str, total: int) -> None:
        """Discovery is over: ``total`` targets exist. From now on completion can be decided."""
        self.set_counts(job_id, total=total, discovered=1)

    def record(
        self, job_id: str, cluster: str, outcome: Mapping[str, Any], *, counter: str | None = None
    ) -> bool:
        """Store a cluster's outcome once. Returns False when it was already there (a
        redelivered message): nothing is counted twice."""
        keys = [self.key(job_id, "results"), self.key(job_id, "counts")]
        args: list[str | int] = [
            cluster,
            json.dumps(outcome),
            int(time.time()),
            counter or "",
            self.ttl,
        ]
        return bool(self._record(keys=keys, args=args))

    def has_result(self, job_id: str, cluster: str) -> bool:
        return bool(self.redis.hexists(self.key(job_id, "results"), cluster))

    def results(self, job_id: str, *, batch: int = 1000) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, value in self.redis.hscan_iter(self.key(job_id, "results"), count=batch):
            yield key, json.loads(value)

    def result(self, job_id: str, cluster: str) -> dict[str, Any] | None:
        value = self.redis.hget(self.key(job_id, "results"), cluster)
        return json.loads(value) if value is not None else None

    # -- counters and sets --------------------------------------------------------------------
    def counts(self, job_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(self.key(job_id, "counts"))
        if not raw:
            raise _lost(job_id, "counters")
        return {k: int(v) for k, v in raw.items()}

    def incr(self, job_id: str, counter: str, by: int = 1) -> int:
        pipe = self.redis.pipeline()
        pipe.hincrby(self.key(job_id, "counts"), counter, by)
        pipe.expire(self.key(job_id, "counts"), self.ttl)
        return int(pipe.execute()[0])

    def set_counts(self, job_id: str, **values: int) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self.key(job_id, "counts"), mapping=values)
        pipe.expire(self.key(job_id, "counts"), self.ttl)
        pipe.execute()

    def join(self, job_id: str, name: str, member: str) -> int:
        """Add ``member`` to the job's set ``name``; returns the set's size. A count that a
        redelivered message repeats harmlessly, unlike ``incr``."""
        key = self.key(job_id, f"set:{name}")
        pipe = self.redis.pipeline()
        pipe.sadd(key, member)
        pipe.expire(key, self.ttl)
        pipe.scard(key)
        return int(pipe.execute()[-1])

    def enter(self, job_id: str, name: str, member: str) -> tuple[bool, int]:
        """``join`` that also says whether ``member`` is new to the set (a first arrival)."""
        key = self.key(job_id, f"set:{name}")
        pipe = self.redis.pipeline()
        pipe.sadd(key, member)
        pipe.expire(key, self.ttl)
        pipe.scard(key)
        added, _, size = pipe.execute()
        return bool(added), int(size)

    def members(self, job_id: str, name: str) -> set[str]:
        return set(self.redis.smembers(self.key(job_id, f"set:{name}")))

    def claim_completion(self, job_id: str) -> bool:
        """True exactly once, for the caller that should enqueue the finaliser."""
        keys = [self.key(job_id, "counts"), self.key(job_id, "final")]
        return bool(self._complete(keys=keys, args=[self.ttl]))

    # -- a remediation's clusters between tasks ---------------------------------------------------
    def written(self, job_id: str, cluster: str) -> dict[str, Any] | None:
        """A cluster's outcome once its writes ended (or it was left alone)."""
        value = self.redis.hget(self.key(job_id, "written"), cluster)
        return json.loads(value) if value is not None else None

    def store_written(
        self, job_id: str, cluster: str, outcome: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Store a cluster's outcome after its writes, once; returns the one stored (the first
        copy's, when a redelivered task stores again)."""
        key = self.key(job_id, "written")
        pipe = self.redis.pipeline()
        pipe.hsetnx(key, cluster, json.dumps(outcome))
        pipe.hget(key, cluster)
        pipe.expire(key, self.ttl)
        stored: dict[str, Any] = json.loads(pipe.execute()[1])
        return stored

    def all_written(self, job_id: str) -> dict[str, dict[str, Any]]:
        raw = self.redis.hgetall(self.key(job_id, "written"))
        return {k: json.loads(v) for k, v in raw.items()}

    def step(self, job_id: str, cluster: str) -> dict[str, Any] | None:
        """The write under way on a cluster (its actions, the step, the operation's token)."""
        value = self.redis.hget(self.key(job_id, "steps"), cluster)
        return json.loads(value) if value is not None else None

    def set_step(self, job_id: str, cluster: str, state: Mapping[str, Any]) -> None:
        key = self.key(job_id, "steps")
        pipe = self.redis.pipeline()
        pipe.hset(key, cluster, json.dumps(state))
        pipe.expire(key, self.ttl)
        pipe.execute()

    def clear_step(self, job_id: str, cluster: str) -> None:
        self.redis.hdel(self.key(job_id, "steps"), cluster)

    def stepping(self, job_id: str) -> set[str]:
        """Clusters with a write under way."""
        return set(self.redis.hkeys(self.key(job_id, "steps")))

    def claim(self, job_id: str, name: str, *, ttl: int) -> bool:
        """Take a short claim (True when it was free): one copy of a task at a time. A claim
        left by a killed worker expires on its own after ``ttl`` seconds."""
        return bool(self.redis.set(self.key(job_id, f"claim:{name}"), "1", nx=True, ex=ttl))

    def release(self, job_id: str, name: str) -> None:
        self.redis.delete(self.key(job_id, f"claim:{name}"))

    def flag(self, job_id: str, name: str) -> None:
        """Mark a step as done (a wave over, its verifications sent)."""
        self.redis.set(self.key(job_id, f"flag:{name}"), "1", ex=self.ttl)

    def flagged(self, job_id: str, name: str) -> bool:
        return bool(self.redis.exists(self.key(job_id, f"flag:{name}")))

    # -- cancel -----------------------------------------------------------------------------
    def cancel(self, job_id: str) -> None:
        self.redis.set(self.key(job_id, "cancel"), "1", ex=self.ttl)

    def cancelled(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.key(job_id, "cancel")))

    # -- per-cluster write lock ------------------------------------------------------------
    def lock_cluster(self, cluster: str, job_id: str, *, ttl_seconds: int) -> bool:
        """Take the cluster for ``job_id`` (re-entrant for the same job)."""
        key = self._lock_key(cluster)
        if self.redis.set(key, job_id, nx=True, ex=ttl_seconds):
            return True
        holder = self.redis.get(key)
        if holder == job_id:
            self.redis.expire(key, ttl_seconds)
            return True
        return False

    def unlock_cluster(self, cluster: str, job_id: str) -> None:
        self.unlock_clusters([cluster], job_id)

    def unlock_clusters(self, clusters: Iterable[str], job_id: str) -> None:
        """Release the locks ``job_id`` holds on ``clusters`` (in one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for cluster in clusters:
            # Delete only our own lock (compare and delete, atomically).
            self._unlock(keys=[self._lock_key(cluster)], args=[job_id], client=pipe)
        pipe.execute()

    def cluster_lock_holder(self, cluster: str) -> str | None:
        value = self.redis.get(self._lock_key(cluster))
        return str(value) if value is not None else None

    # -- installation-wide guards ----------------------------------------------------------
    def guard(self, name: str) -> str | None:
        value = self.redis.get(f"{PREFIX}:guard:{name}")
        return str(value) if value is not None else None

    def set_guard(self, name: str, value: str, *, ttl: int) -> None:
        self.redis.set(f"{PREFIX}:guard:{name}", value, ex=ttl)

    def ping(self) -> bool:
        return bool(self.redis.ping())

"""An in-memory twin of ``JobState``: the same methods and the same meaning, no Redis.

The Celery task bodies (``workers.remediation_flow``) take their job state as an argument; with
this twin and a stub dispatcher they run as plain function calls in a test, one message at a
time, in any order a test chooses (a redelivered message, a lost one, two copies at once),
which real workers can only produce by chance. The contract tests in
``tests/record/test_jobstate_contract.py`` run the same checks against both classes, so the
twin cannot drift from the real thing. Keys expire like Redis keys, on the twin's own clock.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fleet.record.jobstate import _PARTS, DEFAULT_TTL, PREFIX, JobState, _lost


@dataclass
class _Entry:
    value: Any
    expires: float | None


class MemoryJobState:
    """``JobState`` in a dictionary (thread-safe). ``clock`` drives expiry (tests move it)."""

    def __init__(self, *, ttl: int = DEFAULT_TTL, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.clock = clock
        self._data: dict[str, _Entry] = {}
        self._lock = threading.RLock()

    key = staticmethod(JobState.key)
    _lock_key = staticmethod(JobState._lock_key)

    # -- the store ----------------------------------------------------------------------------
    def _get(self, key: str) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires is not None and entry.expires <= self.clock():
            del self._data[key]
            return None
        return entry.value

    def _put(self, key: str, value: Any, ttl: int | None) -> None:
        self._data[key] = _Entry(value, None if ttl is None else self.clock() + ttl)

    def _hash(self, key: str) -> dict[str, str]:
        found = self._get(key)
        if found is None:
            found = {}
            self._put(key, found, self.ttl)
        else:
            self._data[key].expires = self.clock() + self.ttl
        return found  # type: ignore[no-any-return]

    def _expire(self, key: str) -> None:
        if self._get(key) is not None:
            self._data[key].expires = self.clock() + self.ttl

    def _touch(self, job_id: str) -> None:
        for part in _PARTS:
            self._expire(self.key(job_id, part))

    def expiries(self, job_id: str) -> dict[str, int]:
        with self._lock:
            now = self.clock()
            prefix = self.key(job_id)
            return {
                k: -1 if e.expires is None else int(e.expires - now)
                for k, e in list(self._data.items())
                if (k == prefix or k.startswith(prefix + ":")) and self._get(k) is not None
            }

    # -- lifecycle --------------------------------------------------------------------------
    def create(self, job_id: str, kind: str, meta: Mapping[str, Any]) -> None:
        with self._lock:
            fields = {k: json.dumps(v) for k, v in meta.items()}
            fields.update(
                {
                    "kind": json.dumps(kind),
                    "status": json.dumps("queued"),
                    "created": json.dumps(self.clock()),
                }
            )
            self._hash(self.key(job_id)).update(fields)
            self._hash(self.key(job_id, "counts")).update({"total": "-1", "done": "0"})
            index = self._get(f"{PREFIX}:jobs")
            if index is None:
                index = {}
                self._put(f"{PREFIX}:jobs", index, None)
            index[job_id] = self.clock()
            self._touch(job_id)

    def exists(self, job_id: str) -> bool:
        with self._lock:
            return bool(self._get(self.key(job_id)))

    def meta(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            raw = self._get(self.key(job_id))
            if not raw:
                raise _lost(job_id)
            return {k: json.loads(v) for k, v in raw.items()}

    def set_meta(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            self._hash(self.key(job_id)).update({k: json.dumps(v) for k, v in fields.items()})
            self._touch(job_id)

    def status(self, job_id: str) -> str:
        return str(self.meta(job_id)["status"])

    def jobs(self, limit: int = 50) -> list[str]:
        with self._lock:
            index: dict[str, float] = self._get(f"{PREFIX}:jobs") or {}
            return sorted(index, key=lambda j: index[j], reverse=True)[:limit]

    # -- targets and results ----------------------------------------------------------------
    def add_targets(self, job_id: str, targets: Mapping[str, Any]) -> None:
        if not targets:
            return
        with self._lock:
            self._hash(self.key(job_id, "targets")).update(
                {k: json.dumps(v) for k, v in targets.items()}
            )
            self._touch(job_id)

    def targets(self, job_id: str, keys: Iterable[str]) -> dict[str, Any]:
        with self._lock:
            raw = self._get(self.key(job_id, "targets")) or {}
            return {k: json.loads(raw[k]) for k in keys if k in raw}

    def target_keys(self, job_id: str) -> list[str]:
        with self._lock:
            return list(self._get(self.key(job_id, "targets")) or {})

    def discovered(self, job_id: str, total: int) -> None:
        self.set_counts(job_id, total=total, discovered=1)

    def record(
        self, job_id: str, cluster: str, outcome: Mapping[str, Any], *, counter: str | None = None
    ) -> bool:
        with self._lock:
            results = self._hash(self.key(job_id, "results"))
            if cluster in results:
                return False
            results[cluster] = json.dumps(outcome)
            counts = self._hash(self.key(job_id, "counts"))
            counts["done"] = str(int(counts.get("done", "0")) + 1)
            counts["updated"] = str(int(self.clock()))
            if counter:
                counts[counter] = str(int(counts.get(counter, "0")) + 1)
            return True

    def has_result(self, job_id: str, cluster: str) -> bool:
        with self._lock:
            return cluster in (self._get(self.key(job_id, "results")) or {})

    def results(self, job_id: str, *, batch: int = 1000) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._lock:
            items = list((self._get(self.key(job_id, "results")) or {}).items())
        for k, v in items:
            yield k, json.loads(v)

    def result(self, job_id: str, cluster: str) -> dict[str, Any] | None:
        with self._lock:
            value = (self._get(self.key(job_id, "results")) or {}).get(cluster)
            return json.loads(value) if value is not None else None

    # -- counters and sets --------------------------------------------------------------------
    def counts(self, job_id: str) -> dict[str, int]:
        with self._lock:
            raw = self._get(self.key(job_id, "counts"))
            if not raw:
                raise _lost(job_id, "counters")
            return {k: int(v) for k, v in raw.items()}

    def incr(self, job_id: str, counter: str, by: int = 1) -> int:
        with self._lock:
            counts = self._hash(self.key(job_id, "counts"))
            value = int(counts.get(counter, "0")) + by
            counts[counter] = str(value)
            return value

    def set_counts(self, job_id: str, **values: int) -> None:
        with self._lock:
            self._hash(self.key(job_id, "counts")).update({k: str(v) for k, v in values.items()})

    def join(self, job_id: str, name: str, member: str) -> int:
        return self.enter(job_id, name, member)[1]

    def enter(self, job_id: str, name: str, member: str) -> tuple[bool, int]:
        with self._lock:
            key = self.key(job_id, f"set:{name}")
            members = self._get(key)
            if members is None:
                members = set()
            new = member not in members
            members.add(member)
            self._put(key, members, self.ttl)
            return new, len(members)

    def members(self, job_id: str, name: str) -> set[str]:
        with self._lock:
            return set(self._get(self.key(job_id, f"set:{name}")) or ())

    def claim_completion(self, job_id: str) -> bool:
        with self._lock:
            counts = self._get(self.key(job_id, "counts")) or {}
            total = int(counts.get("total", "-1"))
            done = int(counts.get("done", "0"))
            if counts.get("discovered") == "1" and total >= 0 and done >= total:
                final = self.key(job_id, "final")
                if self._get(final) is None:
                    self._put(final, "1", self.ttl)
                    return True
            return False

    # -- a remediation's clusters between tasks ---------------------------------------------------
    def written(self, job_id: str, cluster: str) -> dict[str, Any] | None:
        with self._lock:
            value = (self._get(self.key(job_id, "written")) or {}).get(cluster)
            return json.loads(value) if value is not None else None

    def store_written(
        self, job_id: str, cluster: str, outcome: Mapping[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            written = self._hash(self.key(job_id, "written"))
            written.setdefault(cluster, json.dumps(outcome))
            stored: dict[str, Any] = json.loads(written[cluster])
            return stored

    def all_written(self, job_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            raw = self._get(self.key(job_id, "written")) or {}
            return {k: json.loads(v) for k, v in raw.items()}

    def step(self, job_id: str, cluster: str) -> dict[str, Any] | None:
        with self._lock:
            value = (self._get(self.key(job_id, "steps")) or {}).get(cluster)
            return json.loads(value) if value is not None else None

    def set_step(self, job_id: str, cluster: str, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._hash(self.key(job_id, "steps"))[cluster] = json.dumps(state)

    def clear_step(self, job_id: str, cluster: str) -> None:
        with self._lock:
            (self._get(self.key(job_id, "steps")) or {}).pop(cluster, None)

    def stepping(self, job_id: str) -> set[str]:
        with self._lock:
            return set(self._get(self.key(job_id, "steps")) or {})

    def claim(self, job_id: str, name: str, *, ttl: int) -> bool:
        with self._lock:
            key = self.key(job_id, f"claim:{name}")
            if self._get(key) is not None:
                return False
            self._put(key, "1", ttl)
            return True

    def release(self, job_id: str, name: str) -> None:
        with self._lock:
            self._data.pop(self.key(job_id, f"claim:{name}"), None)

    def flag(self, job_id: str, name: str) -> None:
        with self._lock:
            self._put(self.key(job_id, f"flag:{name}"), "1", self.ttl)

    def flagged(self, job_id: str, name: str) -> bool:
        with self._lock:
            return self._get(self.key(job_id, f"flag:{name}")) is not None

    # -- cancel -----------------------------------------------------------------------------
    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._put(self.key(job_id, "cancel"), "1", self.ttl)

    def cancelled(self, job_id: str) -> bool:
        with self._lock:
            return self._get(self.key(job_id, "cancel")) is not None

    # -- per-cluster write lock ------------------------------------------------------------
    def lock_cluster(self, cluster: str, job_id: str, *, ttl_seconds: int) -> bool:
        with self._lock:
            key = self._lock_key(cluster)
            holder = self._get(key)
            if holder is None or holder == job_id:
                self._put(key, job_id, ttl_seconds)
                return True
            return False

    def unlock_cluster(self, cluster: str, job_id: str) -> None:
        self.unlock_clusters([cluster], job_id)

    def unlock_clusters(self, clusters: Iterable[str], job_id: str) -> None:
        with self._lock:
            for cluster in clusters:
                key = self._lock_key(cluster)
                if self._get(key) == job_id:
                    del self._data[key]

    def cluster_lock_holder(self, cluster: str) -> str | None:
        with self._lock:
            value = self._get(self._lock_key(cluster))
            return str(value) if value is not None else None

    # -- installation-wide guards ----------------------------------------------------------
    def guard(self, name: str) -> str | None:
        with self._lock:
            value = self._get(f"{PREFIX}:guard:{name}")
            return str(value) if value is not None else None

    def set_guard(self, name: str, value: str, *, ttl: int) -> None:
        with self._lock:
            self._put(f"{PREFIX}:guard:{name}", value, ttl)

    def ping(self) -> bool:
        return True

    def snapshot(self) -> dict[str, Any]:
        """A copy of everything stored (tests look inside)."""
        with self._lock:
            return {k: copy.deepcopy(self._get(k)) for k in list(self._data)}

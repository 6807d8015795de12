"""Counters and the request log of writes (``/_emulator/stats``, ``/_emulator/requests``).

Tests and benchmarks assert on these numbers (how many 429s the throttle sent, how many writes
of each type a remediation made), so every response the emulator sends goes through
``Stats.record``. The request log keeps writes only, with a SHA-256 digest of the body instead
of the body: a write may carry secrets and they must not be readable back from the emulator.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from typing import Any

_WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})


class Stats:
    """Request, response, throttling, fault and LRO counters."""

    def __init__(self, log_size: int = 10_000) -> None:
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_method: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.throttled_arm = 0
        self.throttled_graph = 0
        self.faults: Counter[str] = Counter()
        self.writes: Counter[tuple[str, str]] = Counter()
        self.lros: Counter[str] = Counter()
        self.graph_queries = 0

    def record(
        self,
        *,
        method: str,
        path: str,
        resource_type: str,
        status: int,
        principal: str,
        body: bytes,
        now: str,
        is_write: bool,
    ) -> None:
        """Count one answered request; log it when it is a write."""
        self.requests += 1
        self.by_method[method] += 1
        self.by_type[resource_type] += 1
        self.by_status[status] += 1
        if is_write and method in _WRITE_METHODS:
            self.writes[(resource_type, method)] += 1
            self._log.append(
                {
                    "time": now,
                    "method": method,
                    "path": path,
                    "resourceType": resource_type,
                    "status": status,
                    "principal": principal,
                    "bodyBytes": len(body),
                    "bodySha256": hashlib.sha256(body).hexdigest() if body else None,
                }
            )

    def fault(self, action: str) -> None:
        self.faults[action] += 1

    def lro(self, event: str) -> None:
        """``started``, ``succeeded``, ``failed`` or ``canceled``."""
        self.lros[event] += 1

    def requests_log(self) -> list[dict[str, Any]]:
        return list(self._log)

    def clear_log(self) -> None:
        self._log.clear()

    def to_json(self) -> dict[str, Any]:
        writes: dict[str, dict[str, int]] = {}
        for (rtype, method), n in sorted(self.writes.items()):
            writes.setdefault(rtype, {})[method] = n
        started = self.lros["started"]
        finished = self.lros["succeeded"] + self.lros["failed"] + self.lros["canceled"]
        return {
            "requests": {
                "total": self.requests,
                "byMethod": dict(sorted(self.by_method.items())),
                "byResourceType": dict(sorted(self.by_type.items())),
            },
            "responses": {"byStatus": {str(k): v for k, v in sorted(self.by_status.items())}},
            "throttled": {
                "arm": self.throttled_arm,
                "graph": self.throttled_graph,
                "total": self.throttled_arm + self.throttled_graph,
            },
            "faultsInjected": {
                "total": sum(self.faults.values()),
                "byAction": dict(sorted(self.faults.items())),
            },
            "writes": {"total": sum(self.writes.values()), "byResourceType": writes},
            "lros": {
                "started": started,
                "succeeded": self.lros["succeeded"],
                "failed": self.lros["failed"],
                "canceled": self.lros["canceled"],
                "finished": finished,
            },
            "graphQueries": self.graph_queries,
        }

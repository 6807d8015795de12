"""Faults on demand: injected latency, random errors and resets, and scripted faults.

A *scripted fault* matches requests by method, path prefix or regex and resource type, and does
one thing (``action``) once, N times or for ever:

- ``error``: answer ``status`` with ARM's error body (``code``, ``message``, optional
  ``retryAfter`` header) instead of serving the request;
- ``reset``: close the connection without a response;
- ``delay``: stall ``delaySeconds`` before serving the request normally;
- ``lro_fail``: serve the write, but its long-running operation ends ``Failed`` with
  ``code``/``message``;
- ``non_compliant``: serve the flux configuration write; the configuration ends
  ``Non-Compliant`` (as if its source could not be fetched);
- ``malformed``: serve the request, then damage a successful JSON answer the way a broken
  proxy or a buggy service would (``mode``): ``truncated`` (the first half of the bytes),
  ``not_json`` (an HTML error page with status 200), ``missing_fields`` (``id`` and
  ``properties`` removed from each resource), ``nulls`` (every property ``null``),
  ``unknown_enum`` (provisioning, compliance, connectivity and power states an unknown value),
  ``wrong_types`` (every property of the wrong JSON type), ``huge`` (a valid answer padded with
  ``sizeBytes`` of unknown fields).

The same JSON shape is accepted by ``POST /_emulator/faults`` and in a snapshot's
``emulator.faults`` (which is how generated fleets make a cluster's reads fail). Random faults
(``--error-rate`` and friends) and the latency distribution draw from one seeded generator, so
a run with ``seed`` set is reproducible.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

ACTIONS = ("error", "reset", "delay", "lro_fail", "non_compliant", "malformed")
#: Actions that decide what happens before the request reaches the backend.
TRANSPORT_ACTIONS = frozenset({"error", "reset", "delay"})
#: Actions the backend applies to the operation a write starts.
WRITE_ACTIONS = frozenset({"lro_fail", "non_compliant"})
#: How a ``malformed`` fault damages an answer.
MALFORMED_MODES = (
    "truncated",
    "not_json",
    "missing_fields",
    "nulls",
    "unknown_enum",
    "wrong_types",
    "huge",
)
#: Padding of a ``huge`` answer unless the fault says otherwise (4 MiB).
DEFAULT_HUGE_BYTES = 4 * 1024 * 1024

_DEFAULT_CODES = {
    400: "BadRequest",
    403: "AuthorizationFailed",
    404: "ResourceNotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_KEYS = {
    "id",
    "method",
    "pathPrefix",
    "pathRegex",
    "resourceType",
    "action",
    "status",
    "code",
    "message",
    "retryAfter",
    "delaySeconds",
    "count",
    "mode",
    "sizeBytes",
}
#: z of the 99th percentile of the standard normal distribution.
_Z99 = 2.3263478740408408


class FaultSpecError(ValueError):
    """A fault specification with a missing or wrong field."""


@dataclass(slots=True)
class Fault:
    """One scripted fault. ``count`` None means unlimited; ``injected`` counts firings."""

    id: str
    action: str
    methods: frozenset[str] | None = None
    path_prefix: str | None = None
    path_regex: re.Pattern[str] | None = None
    resource_type: str | None = None
    status: int = 500
    code: str = "InternalServerError"
    message: str = "Injected fault."
    retry_after: int | None = None
    delay_seconds: float = 0.0
    count: int | None = None
    mode: str | None = None
    size_bytes: int = DEFAULT_HUGE_BYTES
    injected: int = 0
    _prefix_lower: str = field(default="", repr=False)

    def matches(self, method: str, path: str, resource_type: str) -> bool:
        """True when this fault applies to a request (paths compare case-insensitively)."""
        if self.count is not None and self.injected >= self.count:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        if self.path_prefix is not None and not path.lower().startswith(self._prefix_lower):
            return False
        if self.path_regex is not None and not self.path_regex.search(path):
            return False
        return self.resource_type is None or resource_type.lower() == self.resource_type

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.injected >= self.count

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "action": self.action}
        if self.methods is not None:
            out["method"] = sorted(self.methods)
        if self.path_prefix is not None:
            out["pathPrefix"] = self.path_prefix
        if self.path_regex is not None:
            out["pathRegex"] = self.path_regex.pattern
        if self.resource_type is not None:
            out["resourceType"] = self.resource_type
        if self.action in ("error", "lro_fail"):
            out["code"] = self.code
            out["message"] = self.message
        if self.action == "error":
            out["status"] = self.status
            if self.retry_after is not None:
                out["retryAfter"] = self.retry_after
        if self.action == "delay":
            out["delaySeconds"] = self.delay_seconds
        if self.action == "malformed":
            out["mode"] = self.mode
            if self.mode == "huge":
                out["sizeBytes"] = self.size_bytes
        out["count"] = self.count
        out["injected"] = self.injected
        return out


def parse_fault(spec: Any, where: str = "fault") -> Fault:
    """Validate one fault specification (JSON) and build the ``Fault``.

    Errors name the offending field: ``emulator.faults[2]: action: must be one of ...``.
    """
    if not isinstance(spec, Mapping):
        raise FaultSpecError(f"{where}: must be an object")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise FaultSpecError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    action = spec.get("action")
    if action not in ACTIONS:
        raise FaultSpecError(f"{where}: action: must be one of {', '.join(ACTIONS)}")
    methods: frozenset[str] | None = None
    raw_method = spec.get("method")
    if raw_method is not None:
        items = [raw_method] if isinstance(raw_method, str) else raw_method
        if not isinstance(items, list) or not all(isinstance(m, str) and m for m in items):
            raise FaultSpecError(f"{where}: method: must be a method name or a list of them")
        methods = frozenset(m.upper() for m in items)
    prefix = _opt_str(spec, "pathPrefix", where)
    regex: re.Pattern[str] | None = None
    raw_regex = _opt_str(spec, "pathRegex", where)
    if raw_regex is not None:
        try:
            regex = re.compile(raw_regex, re.IGNORECASE)
        except re.error as exc:
            raise FaultSpecError(f"{where}: pathRegex: not a regular expression ({exc})") from None
    rtype = _opt_str(spec, "resourceType", where)
    status = spec.get("status", 500)
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise FaultSpecError(f"{where}: status: must be an HTTP error status (400-599)")
    default_code = (
        "OperationFailed" if action == "lro_fail" else _DEFAULT_CODES.get(status, "Error")
    )
    code = _opt_str(spec, "code", where) or default_code
    message = _opt_str(spec, "message", where) or (
        "Injected long-running operation failure."
        if action == "lro_fail"
        else f"Injected fault: HTTP {status}."
    )
    retry_after = spec.get("retryAfter")
    if retry_after is not None and (
        not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
    ):
        raise FaultSpecError(f"{where}: retryAfter: must be a non-negative integer")
    delay = spec.get("delaySeconds", 0.0)
    if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
        raise FaultSpecError(f"{where}: delaySeconds: must be a non-negative number")
    if action == "delay" and delay <= 0:
        raise FaultSpecError(f"{where}: delaySeconds: a delay fault needs a positive delay")
    count = spec.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise FaultSpecError(f"{where}: count: must be a positive integer, or null for unlimited")
    mode = _opt_str(spec, "mode", where)
    if action == "malformed" and mode not in MALFORMED_MODES:
        raise FaultSpecError(f"{where}: mode: must be one of {', '.join(MALFORMED_MODES)}")
    if action != "malformed" and mode is not None:
        raise FaultSpecError(f"{where}: mode: only a malformed fault has a mode")
    size = spec.get("sizeBytes", DEFAULT_HUGE_BYTES)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 1 << 30:
        raise FaultSpecError(f"{where}: sizeBytes: must be an integer between 1 and 2**30")
    fid = _opt_str(spec, "id", where) or uuid.uuid4().hex[:12]
    return Fault(
        id=fid,
        action=str(action),
        methods=methods,
        path_prefix=prefix,
        path_regex=regex,
        resource_type=rtype.lower() if rtype else None,
        status=status,
        code=code,
        message=message,
        retry_after=retry_after,
        delay_seconds=float(delay),
        count=count,
        mode=mode,
        size_bytes=size,
        _prefix_lower=(prefix or "").lower(),
    )


def _opt_str(spec: Mapping[str, Any], key: str, where: str) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FaultSpecError(f"{where}: {key}: must be a non-empty string")
    return value


class FaultSet:
    """The installed scripted faults, tried in installation order."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._faults: dict[str, Fault] = {}
        for fault in faults:
            self.add(fault)

    def add(self, fault: Fault) -> Fault:
        self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)

    def to_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self._faults.values()]

    def take(
        self, method: str, path: str, resource_type: str, actions: frozenset[str]
    ) -> Fault | None:
        """The first live fault of one of ``actions`` matching the request; counts it as fired."""
        if not self._faults:
            return None
        for fault in self._faults.values():
            if fault.action in actions and fault.matches(method, path, resource_type):
                fault.injected += 1
                return fault
        return None


#: Enumerations a ``malformed`` fault of mode ``unknown_enum`` replaces (paths in properties).
_ENUM_PATHS = (
    ("provisioningState",),
    ("complianceState",),
    ("connectivityStatus",),
    ("powerState", "code"),
)
UNKNOWN_ENUM = "Frobnicated"


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, str):
        return 12345
    if isinstance(value, int | float):
        return "many"
    if isinstance(value, list):
        return {"not": "a list"}
    if isinstance(value, dict):
        return ["not", "an", "object"]
    return {"unexpected": True}  # null


def _damage_resource(resource: Any, mode: str) -> Any:
    """One resource (a dict with ``properties``) damaged per ``mode``."""
    if not isinstance(resource, dict):
        return resource
    out = dict(resource)
    props = out.get("properties")
    if mode == "missing_fields":
        out.pop("id", None)
        out.pop("properties", None)
    elif mode == "nulls" and isinstance(props, dict):
        out["properties"] = dict.fromkeys(props)
    elif mode == "wrong_types" and isinstance(props, dict):
        out["properties"] = {k: _wrong_type(v) for k, v in props.items()}
    elif mode == "unknown_enum" and isinstance(props, dict):
        new = dict(props)
        for path in _ENUM_PATHS:
            node: Any = new
            for part in path[:-1]:
                child = node.get(part) if isinstance(node, dict) else None
                if not isinstance(child, dict):
                    node = None
                    break
                node[part] = child = dict(child)
                node = child
            if isinstance(node, dict) and path[-1] in node:
                node[path[-1]] = UNKNOWN_ENUM
        out["properties"] = new
    return out


def malform(body: bytes, mode: str, size_bytes: int = DEFAULT_HUGE_BYTES) -> bytes:
    """A successful JSON answer damaged per ``mode`` (``MALFORMED_MODES``)."""
    if mode == "truncated":
        return body[: max(1, len(body) // 2)]
    if mode == "not_json":
        return b"<html><head><title>502 Bad Gateway</title></head><body>Bad gateway</body></html>"
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    items = doc.get("value") if isinstance(doc, dict) else None
    if mode == "huge":
        targets = items if isinstance(items, list) and items else [doc]
        share = max(1, size_bytes // max(1, len(targets)))
        for item in targets:
            if isinstance(item, dict):
                props = item.get("properties")
                if isinstance(props, dict):
                    props["x-emulator-padding"] = "x" * share
                else:
                    item["x-emulator-padding"] = "x" * share
        return bytes(orjson.dumps(doc))
    if isinstance(items, list):
        doc["value"] = [_damage_resource(item, mode) for item in items]
    else:
        doc = _damage_resource(doc, mode)
    return bytes(orjson.dumps(doc))


class Latency:
    """Log-normal latency with a given median and 99th percentile, in seconds.

    Real ARM latencies are right-skewed: most calls are quick, a few are slow. A log-normal
    with ``mu = ln(median)`` and ``sigma = ln(p99 / median) / z99`` has exactly that median and
    p99. Without a p99 the tail defaults to 4x the median.
    """

    def __init__(self, median_ms: float, p99_ms: float | None, rng: random.Random) -> None:
        if median_ms < 0 or (p99_ms is not None and p99_ms < 0):
            raise ValueError("latency must be >= 0")
        self.median_ms = median_ms
        self.p99_ms = p99_ms if p99_ms is not None else median_ms * 4
        if median_ms > 0 and self.p99_ms < median_ms:
            raise ValueError("latency p99 must be >= the median")
        self._rng = rng
        self._mu = math.log(median_ms) if median_ms > 0 else 0.0
        self._sigma = math.log(self.p99_ms / median_ms) / _Z99 if median_ms > 0 else 0.0

    @property
    def enabled(self) -> bool:
        return self.median_ms > 0

    def sample(self) -> float:
        """One latency draw in seconds (0 when disabled)."""
        if self.median_ms <= 0:
            return 0.0
        return self._rng.lognormvariate(self._mu, self._sigma) / 1000.0


@dataclass(slots=True)
class RandomFaults:
    """Rates of random faults, each drawn independently per request (or per write for LROs)."""

    rng: random.Random
    error_rate: float = 0.0
    reset_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    lro_fail_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("error_rate", "reset_rate", "slow_rate", "lro_fail_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    def error_status(self) -> int | None:
        """500 or 503 (half each) at ``error_rate``, else None."""
        if self.error_rate and self.rng.random() < self.error_rate:
            return 500 if self.rng.random() < 0.5 else 503
        return None

    def reset(self) -> bool:
        return bool(self.reset_rate) and self.rng.random() < self.reset_rate

    def slow(self) -> float:
        """Seconds to stall (0 most of the time)."""
        if self.slow_rate and self.rng.random() < self.slow_rate:
            return self.slow_seconds
        return 0.0

    def lro_fail(self) -> bool:
        return bool(self.lro_fail_rate) and self.rng.random() < self.lro_fail_rate

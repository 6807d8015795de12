"""The emulator's knobs, shared by the CLI (``fleet emulator serve``) and ``running_emulator``.

Defaults mirror Azure where Azure has a number (throttling, Resource Graph quota, 48 h for
disconnected Arc clusters, the page size of each ARM list: ``reads.AZURE_PAGE_SIZES``, sourced in
docs/emulator.md). A small ``page_size`` for every list stays an option, for tests that must
cross pages.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

#: Tenant of every subscription unless the snapshot says otherwise.
DEFAULT_TENANT_ID = "72f988bf-0000-4000-8000-00000000f1ee"


@dataclass(frozen=True, slots=True)
class EmulatorOptions:
    """Every option of the emulator. Invalid values raise ``ValueError`` at construction."""

    host: str = "127.0.0.1"
    port: int = 0
    #: Binding anything but loopback needs this, explicitly.
    allow_remote: bool = False
    #: Items per page of every ARM list (``nextLink`` paging); None: each list's page size as
    #: Azure returns it (``reads.AZURE_PAGE_SIZES``). Paging tests set a small one.
    page_size: int | None = None
    #: Operation-status polls answered "in progress" before the terminal state (None: polls
    #: do not count, only ``lro_seconds`` does).
    lro_polls: int | None = 1
    #: Emulated seconds after which an operation finishes even if nobody polls (None: never).
    lro_seconds: float | None = 10.0
    #: ``Retry-After`` of LRO responses, in seconds (0: none is sent; the client then waits its
    #: own ``polling_interval``, as azure-core does for 0 too).
    retry_after: int = 1
    #: Emulated seconds a new or changed flux configuration stays ``Pending`` after its LRO.
    reconcile_seconds: float = 2.0
    throttle: str = "arm"
    throttle_scale: float = 1.0
    graph_quota: int = 15
    graph_window_seconds: float = 5.0
    #: Rows per Resource Graph page when the request gives no ``$top``.
    graph_page_size: int = 100
    latency_ms: float = 0.0
    latency_p99_ms: float | None = None
    error_rate: float = 0.0
    reset_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    lro_fail_rate: float = 0.0
    seed: int | None = None
    tenant_id: str = DEFAULT_TENANT_ID
    #: Directory for ``ca.pem`` (a fresh temporary directory when None).
    ca_dir: str | None = None
    #: Extra host names in the server certificate (e.g. ``emulator`` in docker compose), so
    #: clients on other hosts can reach it by name and still verify TLS.
    tls_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.page_size is not None and self.page_size < 1:
            raise ValueError("page_size must be >= 1")
        if self.lro_polls is not None and self.lro_polls < 0:
            raise ValueError("lro_polls must be >= 0")
        if self.lro_seconds is not None and self.lro_seconds < 0:
            raise ValueError("lro_seconds must be >= 0")
        if self.lro_polls is None and self.lro_seconds is None:
            raise ValueError(
                "lro_polls and lro_seconds cannot both be None: operations would never end"
            )
        if self.retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        if self.reconcile_seconds < 0:
            raise ValueError("reconcile_seconds must be >= 0")
        if self.throttle not in ("arm", "off"):
            raise ValueError("throttle must be 'arm' or 'off'")
        if self.throttle_scale <= 0:
            raise ValueError("throttle_scale must be > 0")
        if self.graph_quota < 1 or self.graph_window_seconds <= 0:
            raise ValueError("graph_quota must be >= 1 and graph_window_seconds > 0")
        if not 1 <= self.graph_page_size <= 1000:
            raise ValueError("graph_page_size must be between 1 and 1000")
        if self.latency_ms < 0 or (self.latency_p99_ms is not None and self.latency_p99_ms < 0):
            raise ValueError("latencies must be >= 0")
        if (
            self.latency_p99_ms is not None
            and self.latency_ms > 0
            and self.latency_p99_ms < self.latency_ms
        ):
            raise ValueError("latency_p99_ms must be >= latency_ms")
        for name in ("error_rate", "reset_rate", "slow_rate", "lro_fail_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 and 65535")

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

"""Paged Resource Graph queries: every row of one query, page by page, within the quota.

A query goes through the Resource Graph SDK client's own raw-request path: its pipeline
(credential, fleet's budget policy, transport) without the typed model layer, which parses a
1,000-row page twice with ``json`` and then copies every value of it (``deserialize_object``):
~45 % of the graph path's CPU. orjson parses each page once.

Pages are ``$top`` rows (at most 1,000), resumed with ``$skipToken``. A failed page is asked
again with its own token, not from the first page, through ``fleet.azure.retrying.call`` (the
one way fleet retries). The SDK's own retries of statuses are off (``retry_status=0``) so that
every answer comes back here: ``QuotaPacer`` reads the quota headers of each, and a 429 waits
in the pacer without counting as a failed attempt. A page that still fails raises
``ArmCallFailed``; so does an answer of the wrong shape (never retried).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.core.rest import HttpRequest, HttpResponse

from fleet.azure import retrying
from fleet.azure.graph_quota import QuotaPacer
from fleet.azure.inventory import send_json
from fleet.azure.session import AzureSession
from fleet.core.errors import ArmCallFailed
from fleet.core.failures import ArmFailure

#: Rows per page: Resource Graph's maximum ``$top``.
PAGE_ROWS = 1000
#: Resource Graph's query endpoint and the api-version azure-mgmt-resourcegraph 8 speaks.
GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
GRAPH_API_VERSION = "2021-03-01"
#: What a failed query is called in ``ArmCallFailed``.
QUERY = "query Resource Graph"


@dataclass
class GraphStats:
    """What the graph reads cost (for the sweep's log and the benchmarks)."""

    queries: int = 0
    pages: int = 0
    rows: int = 0
    cluster_rows: int = 0
    child_rows: int = 0
    orphan_rows: int = 0
    chunks: int = 0
    largest_chunk: int = 0
    fallbacks: int = 0
    failed_chunks: int = 0
    throttled: int = 0
    quota_waits: int = 0
    quota_waited_seconds: float = 0.0
    fallback_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "pages": self.pages,
            "rows": self.rows,
            "clusterRows": self.cluster_rows,
            "childRows": self.child_rows,
            "orphanRows": self.orphan_rows,
            "chunks": self.chunks,
            "largestChunk": self.largest_chunk,
            "fallbacks": self.fallbacks,
            "failedChunks": self.failed_chunks,
            "throttled": self.throttled,
            "quotaWaits": self.quota_waits,
            "quotaWaitedSeconds": round(self.quota_waited_seconds, 3),
            "fallbackReasons": dict(self.fallback_reasons),
        }


def _malformed(message: str) -> ArmCallFailed:
    return ArmCallFailed(QUERY, ArmFailure(None, "MalformedResponse", message, False), 1)


class GraphPages:
    """Reads queries page by page for one inventory (its session, pacer and statistics).

    ``stats`` is shared with the inventory, which counts chunks and fallbacks in it; ``lock``
    guards it (the inventory reads one chunk ahead on a second thread).
    """

    def __init__(
        self,
        session: AzureSession,
        *,
        page_rows: int,
        pacer: QuotaPacer,
        stats: GraphStats,
        lock: threading.Lock,
    ) -> None:
        if not 1 <= page_rows <= PAGE_ROWS:
            raise ValueError(f"page_rows must be between 1 and {PAGE_ROWS}")
        self._session = session
        self.page_rows = page_rows
        self._pacer = pacer
        self._stats = stats
        self._lock = lock

    def rows(self, query: str, subscriptions: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Every row of a query over the subscriptions, page by page."""
        token: str | None = None
        while True:
            page = self.page(query, subscriptions, token)
            data = page.get("data")
            if not isinstance(data, list):
                raise _malformed(f"unexpected result format {type(data).__name__}")
            with self._lock:
                self._stats.pages += 1
                self._stats.rows += len(data)
                if "kubernetesconfigurationresources" in query:
                    self._stats.child_rows += len(data)
            yield from data
            token = page.get("$skipToken")
            if not token:
                if str(page.get("resultTruncated")).lower() == "true":
                    raise _malformed("the result was truncated without a $skipToken")
                return

    def page(self, query: str, subscriptions: Sequence[str], token: str | None) -> dict[str, Any]:
        """One page of a query (the ``QueryResponse`` JSON), within the quota, with retries."""
        client = self._session.graph()
        options: dict[str, Any] = {"$top": self.page_rows, "resultFormat": "objectArray"}
        if token:
            options["$skipToken"] = token
        body = {"subscriptions": list(subscriptions), "query": query, "options": options}

        def send() -> dict[str, Any]:
            self._pacer.before()
            sent = time.monotonic()
            with self._lock:
                self._stats.queries += 1

            def answered(response: HttpResponse) -> None:
                self._pacer.after(sent, time.monotonic(), response.headers)

            try:
                request = HttpRequest(
                    "POST", GRAPH_PATH, params={"api-version": GRAPH_API_VERSION}, json=body
                )
                page: dict[str, Any] = send_json(
                    client, request, on_response=answered, retry_status=0
                )
                return page
            finally:
                with self._lock:
                    self._stats.quota_waits = self._pacer.waits
                    self._stats.quota_waited_seconds = self._pacer.waited

        return retrying.call(
            send,
            attempts=self._session.settings.read_attempts,
            what=QUERY,
            on_throttle=self._refused,
        )

    def _refused(self, retry_after: float) -> None:
        with self._lock:
            self._stats.throttled += 1
        self._pacer.refused(retry_after)

"""Azure Resource Graph requests: the ``QueryRequest`` body, paging, skip tokens, cursors.

``execute`` answers a request (api-version 2021-03-01) from the rows of a table: it parses the
query (kql.py), runs it (kql_eval.py), and answers one page in the requested format with a
``$skipToken`` for the next. A skip token names the query and scope it belongs to, so one
query's token cannot page another; ``Cursors`` keeps the results of a paged query so that its
continuation pages do not run it again.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from fleet.emulator.kql import COLUMNS, GraphQueryError, parse
from fleet.emulator.kql_eval import select

MAX_TOP = 1000


@dataclass(frozen=True, slots=True)
class GraphRequest:
    """The parts of a ``QueryRequest`` body the emulator honours."""

    query: str
    subscriptions: tuple[str, ...] | None
    top: int | None
    skip: int
    skip_token: str | None
    result_format: str


def parse_request(body: Any) -> GraphRequest:
    """Validate a ``QueryRequest`` body (api 2021-03-01); raises ``GraphQueryError``."""
    if not isinstance(body, Mapping):
        raise GraphQueryError("the request body must be a QueryRequest object")
    query = body.get("query")
    if not isinstance(query, str):
        raise GraphQueryError("'query' is required")
    if body.get("managementGroups"):
        raise GraphQueryError("management-group scopes are not supported by the emulator")
    if body.get("facets"):
        raise GraphQueryError("facets are not supported by the emulator")
    subs = body.get("subscriptions")
    if subs is not None and (
        not isinstance(subs, list) or not all(isinstance(s, str) for s in subs)
    ):
        raise GraphQueryError("'subscriptions' must be a list of subscription ids")
    options = body.get("options") or {}
    if not isinstance(options, Mapping):
        raise GraphQueryError("'options' must be an object")
    top = options.get("$top")
    if top is not None and (
        not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_TOP
    ):
        raise GraphQueryError(f"options.$top must be an integer between 1 and {MAX_TOP}")
    skip = options.get("$skip") or 0
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        raise GraphQueryError("options.$skip must be a non-negative integer")
    token = options.get("$skipToken")
    if token is not None and not isinstance(token, str):
        raise GraphQueryError("options.$skipToken must be a string")
    fmt = options.get("resultFormat") or "objectArray"
    if fmt not in ("objectArray", "table"):
        raise GraphQueryError("options.resultFormat must be 'objectArray' or 'table'")
    return GraphRequest(
        query=query,
        subscriptions=tuple(subs) if subs is not None else None,
        top=top,
        skip=skip,
        skip_token=token or None,
        result_format=fmt,
    )


def _fingerprint(req: GraphRequest) -> str:
    scope = ",".join(sorted(s.lower() for s in req.subscriptions or ()))
    return hashlib.sha256(f"{req.query}\n{scope}".encode()).hexdigest()[:16]


def encode_skip_token(req: GraphRequest, offset: int, cursor: str | None = None) -> str:
    token: dict[str, Any] = {"q": _fingerprint(req), "o": offset}
    if cursor is not None:
        token["c"] = cursor
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def _decode(req: GraphRequest, token: str) -> tuple[int, str | None]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = int(data["o"])
        same = data["q"] == _fingerprint(req)
        cursor = data.get("c")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise GraphQueryError("options.$skipToken is not a token this emulator issued") from None
    if not same or offset < 0:
        raise GraphQueryError("options.$skipToken belongs to a different query or scope")
    return offset, cursor if isinstance(cursor, str) else None


def decode_skip_token(req: GraphRequest, token: str) -> int:
    return _decode(req, token)[0]


class Cursors:
    """Results of paged queries, kept for their continuation pages.

    Resource Graph answers the pages of one query from one execution; so does the emulator:
    the first page computes the whole (sorted, filtered) result and later pages
    (``$skipToken``) slice it, instead of re-running the query over the whole fleet for every
    page (at 100,000 clusters that was ~1 s a page, and the emulator became the limit of the
    benchmarks). A query sent without a token is always computed afresh, so a write is seen
    by every new query; a page of a running cursor shows the current properties of the rows
    the first page selected. Bounded: the ``limit`` most recent cursors, ``ttl`` seconds each;
    a token whose cursor is gone is answered by running the query again.
    """

    def __init__(
        self, limit: int = 16, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, list[Mapping[str, Any]]]] = OrderedDict()

    def put(self, rows: list[Mapping[str, Any]]) -> str:
        cursor = secrets.token_hex(8)
        with self._lock:
            self._items[cursor] = (self._clock() + self._ttl, rows)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)
        return cursor

    def get(self, cursor: str) -> list[Mapping[str, Any]] | None:
        with self._lock:
            found = self._items.get(cursor)
            if found is None:
                return None
            if found[0] < self._clock():
                del self._items[cursor]
                return None
            self._items.move_to_end(cursor)
            return found[1]


def execute(
    req: GraphRequest,
    tables: Callable[[str, frozenset[str] | None], Iterable[Mapping[str, Any]]],
    default_top: int = 100,
    cursors: Cursors | None = None,
) -> dict[str, Any]:
    """Run a request against the rows ``tables(name, scope)`` gives; returns the
    ``QueryResponse`` body. ``scope`` is the lower-cased subscriptions of the request (None:
    all); ``tables`` may use it to skip rows early, they are filtered here either way.
    ``cursors`` keeps results for the continuation pages of a paged query."""
    query = parse(req.query)
    offset, cursor = _decode(req, req.skip_token) if req.skip_token else (req.skip, None)
    result = cursors.get(cursor) if cursors is not None and cursor is not None else None
    if result is None:
        scope = (
            frozenset(s.lower() for s in req.subscriptions)
            if req.subscriptions is not None
            else None
        )
        rows: Iterable[Mapping[str, Any]] = tables(query.table, scope)
        if scope is not None:
            rows = [r for r in rows if str(r.get("subscriptionId", "")).lower() in scope]
        result = select(query, rows)
        cursor = None
    columns = query.columns
    top = req.top or default_top
    page = [{c: r.get(c) for c in columns} for r in result[offset : offset + top]]
    more = offset + len(page) < len(result)
    body: dict[str, Any] = {
        "totalRecords": len(result),
        "count": len(page),
        "resultTruncated": "false",
        "facets": [],
    }
    if more:
        # ARG pages only when the rows have an id to resume from; otherwise it truncates.
        if "id" in columns:
            if cursor is None and cursors is not None:
                cursor = cursors.put(result)
            body["$skipToken"] = encode_skip_token(req, offset + len(page), cursor)
        else:
            body["resultTruncated"] = "true"
    body["data"] = _format(page, columns, req.result_format)
    return body


def _format(rows: Sequence[Mapping[str, Any]], columns: list[str], fmt: str) -> Any:
    if fmt == "objectArray":
        return list(rows)
    return {
        "columns": [{"name": c, "type": COLUMNS[c]} for c in columns],
        "rows": [[r.get(c) for c in columns] for r in rows],
    }

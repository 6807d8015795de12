"""Azure Resource Graph: the subset of KQL that fleet's queries use, and paging.

The grammar (docs/emulator.md has the same, with examples)::

    query    := TABLE ( '|' operator )*
    TABLE    := resources | kubernetesconfigurationresources | resourcecontainers
    operator := 'where' expr
              | 'project' COLUMN (',' COLUMN)*
              | ('order' | 'sort') 'by' COLUMN ['asc' | 'desc'] (',' COLUMN ['asc' | 'desc'])*
              | ('limit' | 'take') INTEGER
    expr     := conj ('or' conj)*
    conj     := atom ('and' atom)*
    atom     := '(' expr ')' | path CMP literal | path SETOP '(' literal (',' literal)* ')'
    path     := COLUMN ('.' NAME | '[' STRING ']')*        (into properties, tags, sku, ...)
    CMP      := '==' | '!=' | '=~' | '!~' | 'startswith' | 'endswith' | 'contains'
              | 'startswith_cs' | 'endswith_cs' | 'contains_cs'
    SETOP    := 'in' | 'in~' | '!in' | '!in~'
    literal  := 'string' | "string" | integer | true | false

KQL semantics kept: column names are case-sensitive, ``==``/``in`` compare case-sensitively,
``=~``/``in~`` and ``startswith``/``endswith``/``contains`` ignore case, ``order by`` sorts
descending unless ``asc`` is given (nulls last when descending, first when ascending), a missing
or null value fails every comparison. One deliberate leniency: keys inside a dynamic column
(``properties.extensionType``) match case-insensitively, because real ARG rows of some types
carry PascalCase keys and queries in the wild use both spellings.

Anything else (``extend``, ``summarize``, ``join``, functions, ``not``, arithmetic, ...) raises
``GraphQueryError``, which the HTTP layer answers with 400 ``InvalidQuery``: a query the
emulator does not understand never gets a wrong answer.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

TABLES = ("resources", "kubernetesconfigurationresources", "resourcecontainers")
#: Columns of every table, in ARG's order, with the type reported by ``resultFormat: table``.
COLUMNS: dict[str, str] = {
    "id": "string",
    "name": "string",
    "type": "string",
    "tenantId": "string",
    "kind": "string",
    "location": "string",
    "resourceGroup": "string",
    "subscriptionId": "string",
    "managedBy": "string",
    "sku": "object",
    "plan": "object",
    "properties": "object",
    "tags": "object",
    "identity": "object",
    "zones": "object",
    "extendedLocation": "object",
}
MAX_TOP = 1000
_CMP = {
    "==",
    "!=",
    "=~",
    "!~",
    "startswith",
    "endswith",
    "contains",
    "startswith_cs",
    "endswith_cs",
    "contains_cs",
}
_SETOPS = {"in", "in~", "!in", "!in~"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>!in~|!in|in~|==|!=|=~|!~|=|\||\(|\)|,|\[|\]|\.)
  | (?P<num>-?\d+(?![\w.]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:~)?)
    """,
    re.VERBOSE,
)


class GraphQueryError(ValueError):
    """A query outside the supported subset, or malformed."""


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # str | op | num | word
    text: str
    pos: int


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if m is None:
            raise GraphQueryError(f"unexpected character {query[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            text = m.group()
            if kind == "word" and text in ("in", "in~"):
                kind = "op"
            tokens.append(Token(kind, text, pos))
        pos = m.end()
    return tokens


@dataclass(frozen=True, slots=True)
class Path:
    column: str
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ".".join((self.column, *self.keys))


@dataclass(frozen=True, slots=True)
class Compare:
    path: Path
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # and | or
    items: tuple[Expr, ...]


Expr = Compare | BoolOp


@dataclass(slots=True)
class Query:
    """A parsed query: one table and its operators, in order."""

    table: str
    steps: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The output columns (the last ``project``, else every column)."""
        cols = list(COLUMNS)
        for kind, arg in self.steps:
            if kind == "project":
                cols = list(arg)
        return cols


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.query = Query("")

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise GraphQueryError(f"unexpected end of query: expected {what}")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.next(repr(text))
        if tok.text != text:
            raise GraphQueryError(f"expected {text!r} at position {tok.pos}, found {tok.text!r}")

    def word(self, what: str) -> Token:
        tok = self.next(what)
        if tok.kind != "word":
            raise GraphQueryError(f"expected {what} at position {tok.pos}, found {tok.text!r}")
        return tok

    def parse(self) -> Query:
        table_tok = self.word("a table name")
        table = table_tok.text.lower()
        if table not in TABLES:
            raise GraphQueryError(
                f"unsupported table {table_tok.text!r} (supported: {', '.join(TABLES)})"
            )
        query = self.query = Query(table)
        while self.peek() is not None:
            self.expect("|")
            op = self.word("an operator after '|'")
            name = op.text.lower()
            if name == "where":
                query.steps.append(("where", self.expr()))
            elif name == "project":
                query.steps.append(("project", self.columns_list(query)))
            elif name in ("order", "sort"):
                self.expect("by")
                query.steps.append(("order", self.order_keys(query)))
            elif name in ("limit", "take"):
                tok = self.next("a row count")
                if tok.kind != "num" or int(tok.text) < 0:
                    raise GraphQueryError(f"{name} needs a non-negative integer")
                query.steps.append(("limit", int(tok.text)))
            else:
                raise GraphQueryError(
                    f"unsupported operator {op.text!r} at position {op.pos} "
                    "(supported: where, project, order by, sort by, limit, take)"
                )
        return query

    def column(self, query: Query) -> str:
        tok = self.word("a column name")
        if tok.text not in query.columns:
            raise GraphQueryError(
                f"unknown column {tok.text!r} at position {tok.pos} "
                f"(column names are case-sensitive; available: {', '.join(query.columns)})"
            )
        return tok.text

    def columns_list(self, query: Query) -> tuple[str, ...]:
        cols = [self.column(query)]
        while (tok := self.peek()) is not None and tok.text == ",":
            self.i += 1
            cols.append(self.column(query))
        return tuple(cols)

    def order_keys(self, query: Query) -> tuple[tuple[str, bool], ...]:
        keys: list[tuple[str, bool]] = []
        while True:
            col = self.column(query)
            desc = True  # KQL's default direction
            tok = self.peek()
            if tok is not None and tok.kind == "word" and tok.text.lower() in ("asc", "desc"):
                desc = tok.text.lower() == "desc"
                self.i += 1
            keys.append((col, desc))
            tok = self.peek()
            if tok is None or tok.text != ",":
                return tuple(keys)
            self.i += 1

    def expr(self) -> Expr:
        items = [self.conj()]
        while (tok := self.peek()) is not None and tok.kind == "word" and tok.text == "or":
            self.i += 1
            items.append(self.conj())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def conj(self) -> Expr:
        items = [self.atom()]
        while (tok := self.peek()) is not None and tok.kind == "word" and tok.text == "and":
            self.i += 1
            items.append(self.atom())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def atom(self) -> Expr:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.i += 1
            inner = self.expr()
            self.expect(")")
            return inner
        path = self.path()
        op = self.next("a comparison operator")
        if op.text in _SETOPS:
            self.expect("(")
            values = [self.literal()]
            while (sep := self.next("',' or ')'")).text == ",":
                values.append(self.literal())
            if sep.text != ")":
                raise GraphQueryError(f"expected ')' at position {sep.pos}")
            return Compare(path, op.text, tuple(values))
        if op.text in _CMP:
            return Compare(path, op.text, (self.literal(),))
        raise GraphQueryError(
            f"unsupported operator {op.text!r} at position {op.pos} "
            f"(supported: {', '.join(sorted(_CMP | _SETOPS))})"
        )

    def path(self) -> Path:
        tok = self.word("a column name")
        if tok.text not in self.query.columns:
            raise GraphQueryError(
                f"unknown column or function {tok.text!r} at position {tok.pos} "
                "(functions are not supported; column names are case-sensitive)"
            )
        keys: list[str] = []
        while (nxt := self.peek()) is not None and nxt.text in (".", "["):
            self.i += 1
            if nxt.text == ".":
                keys.append(self.word("a property name").text)
            else:
                key = self.next("a quoted key")
                if key.kind != "str":
                    raise GraphQueryError(f"expected a quoted key at position {key.pos}")
                keys.append(_unquote(key.text))
                self.expect("]")
        if keys and COLUMNS[tok.text] != "object":
            raise GraphQueryError(f"column {tok.text!r} is a string: it has no properties")
        return Path(tok.text, tuple(keys))

    def literal(self) -> Any:
        tok = self.next("a literal")
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind == "num":
            return int(tok.text)
        if tok.kind == "word" and tok.text in ("true", "false"):
            return tok.text == "true"
        raise GraphQueryError(f"expected a string, number or boolean at position {tok.pos}")


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(text: str) -> Query:
    """Parse a query of the supported subset; raises ``GraphQueryError``."""
    if not isinstance(text, str) or not text.strip():
        raise GraphQueryError("the query is empty")
    return _Parser(text).parse()


# --------------------------------------------------------------------------- evaluation


def _lookup(row: Mapping[str, Any], path: Path) -> Any:
    value: Any = row.get(path.column)
    for key in path.keys:
        if not isinstance(value, Mapping):
            return None
        if key in value:
            value = value[key]
            continue
        lowered = key.lower()
        value = next((v for k, v in value.items() if k.lower() == lowered), None)
    return value


def _same(value: Any, literal: Any, fold: bool) -> bool:
    if isinstance(literal, str):
        if not isinstance(value, str):
            return False
        return value.lower() == literal.lower() if fold else value == literal
    if isinstance(literal, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(literal, bool) and value == literal
    return isinstance(value, int | float) and value == literal


def _evaluate(expr: Expr, row: Mapping[str, Any]) -> bool:
    if isinstance(expr, BoolOp):
        if expr.op == "and":
            return all(_evaluate(e, row) for e in expr.items)
        return any(_evaluate(e, row) for e in expr.items)
    value = _lookup(row, expr.path)
    if value is None:
        return False
    op, lits = expr.op, expr.values
    if op in ("==", "=~"):
        return _same(value, lits[0], op == "=~")
    if op in ("!=", "!~"):
        return not _same(value, lits[0], op == "!~")
    if op in ("in", "in~"):
        return any(_same(value, lit, op == "in~") for lit in lits)
    if op in ("!in", "!in~"):
        return not any(_same(value, lit, op == "!in~") for lit in lits)
    # String predicates: both sides must be strings.
    if not isinstance(value, str) or not isinstance(lits[0], str):
        return False
    cs = op.endswith("_cs")
    hay, needle = (value, lits[0]) if cs else (value.lower(), lits[0].lower())
    base = op.removesuffix("_cs")
    if base == "startswith":
        return hay.startswith(needle)
    if base == "endswith":
        return hay.endswith(needle)
    return needle in hay


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def _column_key(column: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    def key(row: Mapping[str, Any]) -> tuple[int, Any]:
        return _sort_key(row.get(column))

    return key


def run(query: Query, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Apply the operators of ``query`` to the rows of its table, in order."""
    columns = query.columns
    return [{c: r.get(c) for c in columns} for r in select(query, rows)]


def select(query: Query, rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows ``query`` returns, in order, *before* projection.

    ``project`` only narrows what is shown: the parser refuses any later reference to a
    dropped column, so filtering and sorting the whole rows gives the same result, and only
    the rows of the page that is answered need projecting (``execute``). That keeps a paged
    query over 100,000 rows from building a new dict per row for every page.
    """
    current: list[Mapping[str, Any]] = list(rows)
    for kind, arg in query.steps:
        if kind == "where":
            current = [r for r in current if _evaluate(arg, r)]
        elif kind == "project":
            continue
        elif kind == "order":
            # Stable sorts from the last key to the first give a multi-key order.
            for col, desc in reversed(arg):
                present = [r for r in current if r.get(col) is not None]
                absent = [r for r in current if r.get(col) is None]
                present.sort(key=_column_key(col), reverse=desc)
                current = present + absent if desc else absent + present
        elif kind == "limit":
            current = current[:arg]
    return current


# --------------------------------------------------------------------------- the request


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

"""The KQL subset of Azure Resource Graph that fleet's queries use: tokens, grammar, parse.

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

Column names are case-sensitive, as in KQL, and a column must exist at the point of the query
where it is named (after a ``project``, only the projected ones). kql_eval.py runs a parsed
``Query`` over rows.

Anything else (``extend``, ``summarize``, ``join``, functions, ``not``, arithmetic, ...) raises
``GraphQueryError``, which the HTTP layer answers with 400 ``InvalidQuery``: a query the
emulator does not understand never gets a wrong answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
        return self._joined("or", self.conj)

    def conj(self) -> Expr:
        return self._joined("and", self.atom)

    def _joined(self, op: str, item: Callable[[], Expr]) -> Expr:
        """``item (op item)*``: one item alone, else their ``BoolOp``."""
        items = [item()]
        while (tok := self.peek()) is not None and tok.kind == "word" and tok.text == op:
            self.i += 1
            items.append(item())
        return items[0] if len(items) == 1 else BoolOp(op, tuple(items))

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

"""Evaluation of a parsed KQL query (kql.py) over the rows of a Resource Graph table.

KQL semantics kept: ``==``/``in`` compare case-sensitively, ``=~``/``in~`` and
``startswith``/``endswith``/``contains`` ignore case, ``order by`` sorts descending unless
``asc`` is given (nulls last when descending, first when ascending), a missing or null value
fails every comparison. One deliberate leniency: keys inside a dynamic column
(``properties.extensionType``) match case-insensitively, because real ARG rows of some types
carry PascalCase keys and queries in the wild use both spellings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from fleet.emulator.kql import BoolOp, Expr, Path, Query


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

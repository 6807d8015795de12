"""The OData ``$filter`` of ARM's generic resource list, parsed into a predicate.

The subset fleet and the SDK samples use: ``<field> eq '<value>'`` on resourceType,
resourceGroup, name or location, joined with ``and``/``or`` and parentheses. Values compare
case-insensitively, as ARM compares them. Anything else raises ``InvalidFilterInQueryString``
rather than filtering wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from fleet.emulator import errors as e

_FILTER_TOKEN = re.compile(r"\s*(?:(\()|(\))|'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_]*))")
#: The filter's field names (any case) and the column of ``filter_fields`` each compares.
_FILTER_FIELDS = {
    "resourcetype": "type",
    "resourcegroup": "resourceGroup",
    "name": "name",
    "location": "location",
}

Predicate = Callable[[Mapping[str, str]], bool]


def filter_fields(res: Mapping[str, Any]) -> dict[str, str]:
    """The lower-cased values of a resource that a ``$filter`` can compare."""
    parts = str(res["id"]).strip("/").split("/")
    return {
        "type": str(res.get("type", "")).lower(),
        "resourceGroup": parts[3].lower() if len(parts) > 3 else "",
        "name": str(res.get("name", "")).lower(),
        "location": str(res.get("location", "")).lower(),
    }


def _any_of(items: tuple[Predicate, ...]) -> Predicate:
    return lambda row: any(p(row) for p in items)


def _all_of(items: tuple[Predicate, ...]) -> Predicate:
    return lambda row: all(p(row) for p in items)


def _equals(column: str, wanted: str) -> Predicate:
    return lambda row: row.get(column) == wanted


class _FilterParser:
    """Recursive descent over the tokens of an OData ``$filter``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        self.i = 0
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _FILTER_TOKEN.match(stripped, pos)
            if m is None or m.end() == pos:
                raise self.fail()
            if m.group(1):
                self.tokens.append(("(", "("))
            elif m.group(2):
                self.tokens.append((")", ")"))
            elif m.group(3) is not None:
                self.tokens.append(("str", m.group(3).replace("''", "'")))
            else:
                self.tokens.append(("word", m.group(4)))
            pos = m.end()

    def fail(self) -> e.InvalidFilterInQueryString:
        return e.InvalidFilterInQueryString(
            f"Invalid $filter '{self.text}' specified in the query string: the emulator "
            "supports <resourceType|resourceGroup|name|location> eq '<value>' joined with "
            "and/or and parentheses."
        )

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.i != len(self.tokens):
            raise self.fail()
        return predicate

    def _word(self, word: str) -> bool:
        if self.i < len(self.tokens) and self.tokens[self.i] == ("word", word):
            self.i += 1
            return True
        return False

    def expr(self) -> Predicate:
        items = [self.conj()]
        while self._word("or"):
            items.append(self.conj())
        return items[0] if len(items) == 1 else _any_of(tuple(items))

    def conj(self) -> Predicate:
        items = [self.atom()]
        while self._word("and"):
            items.append(self.atom())
        return items[0] if len(items) == 1 else _all_of(tuple(items))

    def atom(self) -> Predicate:
        tokens = self.tokens
        if self.i < len(tokens) and tokens[self.i][0] == "(":
            self.i += 1
            inner = self.expr()
            if self.i >= len(tokens) or tokens[self.i][0] != ")":
                raise self.fail()
            self.i += 1
            return inner
        if self.i + 3 > len(tokens):
            raise self.fail()
        (k1, field_name), (k2, op), (k3, value) = tokens[self.i : self.i + 3]
        column = _FILTER_FIELDS.get(field_name.lower()) if k1 == "word" else None
        if column is None or k2 != "word" or op != "eq" or k3 != "str":
            raise self.fail()
        self.i += 3
        return _equals(column, value.lower())


def parse_resource_filter(text: str) -> Predicate:
    """An OData ``$filter`` of ``resources.list``: ``eq`` on resourceType, resourceGroup, name,
    location, combined with ``and``/``or`` and parentheses (values compare case-insensitively).

    Anything else raises ``InvalidFilterInQueryString`` rather than filtering wrongly.
    """
    return _FilterParser(text).parse()

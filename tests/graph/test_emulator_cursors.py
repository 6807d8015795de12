"""The emulator's Resource Graph cursors: the continuation pages of a paged query are sliced
from the result its first page computed, a new query always sees the current state, and a
token whose cursor is gone is answered by running the query again.

(These keep the emulator from re-running a query over the whole fleet for every page, which
made it the limit of the 100,000-cluster benchmarks.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fleet.emulator import graph

QUERY = "resources | project id, name | order by id asc"


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"/subscriptions/s/r/{i:04d}", "name": f"r{i}", "subscriptionId": "s"}
            for i in range(n)]  # fmt: skip


class Table:
    def __init__(self, data: list[dict[str, Any]]) -> None:
        self.data = data
        self.scans = 0

    def __call__(self, table: str, scope: frozenset[str] | None) -> Iterable[Mapping[str, Any]]:
        self.scans += 1
        return list(self.data)


def page(table: Table, cursors: graph.Cursors | None, token: str | None = None) -> dict[str, Any]:
    body = {"query": QUERY, "subscriptions": ["s"], "options": {"$top": 10}}
    if token:
        body["options"]["$skipToken"] = token
    return graph.execute(graph.parse_request(body), table, 100, cursors)


def read_all(table: Table, cursors: graph.Cursors | None, *, grow: bool = False) -> list[str]:
    seen: list[str] = []
    token = None
    while True:
        answer = page(table, cursors, token)
        seen += [r["id"] for r in answer["data"]]
        if grow:  # a resource appears while the paged read runs
            table.data.append({"id": f"/subscriptions/s/r/x{len(table.data)}", "name": "new",
                               "subscriptionId": "s"})  # fmt: skip
        token = answer.get("$skipToken")
        if not token:
            return seen


def test_pages_of_one_query_are_sliced_from_one_execution() -> None:
    table, cursors = Table(rows(95)), graph.Cursors()
    assert read_all(table, cursors) == [r["id"] for r in rows(95)]
    assert table.scans == 1  # ten pages, one execution


def test_a_paged_read_is_consistent_and_a_new_query_sees_the_change() -> None:
    table, cursors = Table(rows(30)), graph.Cursors()
    first = read_all(table, cursors, grow=True)
    assert first == [r["id"] for r in rows(30)]  # no row twice, none skipped
    again = read_all(table, cursors)
    assert len(again) == 30 + 3  # the three added while paging are there for a new query


def test_without_cursors_every_page_runs_the_query() -> None:
    table = Table(rows(25))
    assert read_all(table, None) == [r["id"] for r in rows(25)]
    assert table.scans == 3


def test_a_forgotten_cursor_runs_the_query_again() -> None:
    now = [0.0]
    table, cursors = Table(rows(25)), graph.Cursors(limit=1, ttl=10, clock=lambda: now[0])
    token = page(table, cursors)["$skipToken"]
    page(Table(rows(25)), cursors)  # a second cursor evicts the first (limit 1)
    assert [r["id"] for r in page(table, cursors, token)["data"]] == [
        r["id"] for r in rows(25)[10:20]
    ]
    token = page(table, cursors)["$skipToken"]
    now[0] = 11.0  # expired
    scans = table.scans
    assert len(page(table, cursors, token)["data"]) == 10
    assert table.scans == scans + 1

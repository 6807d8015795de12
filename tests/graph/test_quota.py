"""The Resource Graph quota: paced from the answers' headers, 429s waited out.

``QuotaPacer`` is first checked against a simulated fixed-window quota on a fake clock (exact
timing), then the whole inventory against the emulator's quota with the real SDK.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.azure.credentials import EmulatorCredential
from fleet.azure.graph import GraphInventory
from fleet.azure.graph_quota import QuotaPacer
from fleet.azure.session import AzureSession
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.graph.conftest import CLUSTERS, settings_for


class FixedWindow:
    """A fixed-window quota like Resource Graph's, on a fake clock, with ``hh:mm:ss``
    headers rounded up as the emulator sends them."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.start: float | None = None
        self.used = 0
        self.refused = 0

    def answer(self, now: float) -> tuple[bool, dict[str, str], float]:
        if self.start is None or now - self.start >= self.window:
            self.start, self.used = now, 0
        left = self.window - (now - self.start)
        after = f"00:00:{math.ceil(left):02d}"
        if self.used >= self.limit:
            self.refused += 1
            return (
                False,
                {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": after},
                math.ceil(left),
            )
        self.used += 1
        return (
            True,
            {
                "x-ms-user-quota-remaining": str(self.limit - self.used),
                "x-ms-user-quota-resets-after": after,
            },
            0.0,
        )


@pytest.mark.parametrize("latency", [0.003, 0.04, 0.25])
def test_the_pacer_spends_each_window_without_a_429(latency: float) -> None:
    now = [100.123]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = QuotaPacer(clock=lambda: now[0], sleep=sleep)
    server = FixedWindow(limit=15, window=5.0)
    queries = 100
    served = 0
    while served < queries:
        pacer.before()
        sent = now[0]
        now[0] += latency / 2
        ok, headers, retry_after = server.answer(now[0])
        now[0] += latency / 2
        pacer.after(sent, now[0], headers)
        if ok:
            served += 1
        else:
            pacer.refused(retry_after)
    assert server.refused == 0
    # 100 queries = 7 windows, the last serving 10 queries. Each turn of the window may cost
    # one round trip (the reset is only known to have passed once an answer says so) and the
    # pacer's small margin, never the second the headers are rounded to.
    elapsed = now[0] - 100.123
    assert elapsed < 6 * (5 + latency + 0.05) + 10 * latency, elapsed


def test_a_refusal_is_waited_out_and_makes_the_pacer_more_careful() -> None:
    now = [0.0]
    pacer = QuotaPacer(clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    pacer.after(
        0.0, 0.01, {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:03"}
    )
    pacer.refused(3.0)
    pacer.before()
    assert now[0] >= 3.0
    assert pacer.throttled == 1 and pacer.waits == 1


def test_without_quota_headers_nothing_waits() -> None:
    pacer = QuotaPacer(clock=lambda: 0.0, sleep=lambda s: pytest.fail("must not wait"))
    for _ in range(50):
        pacer.before()
        pacer.after(0.0, 0.0, {})


def _with_graph_quota(
    fleet: dict[str, Any], *, queries: int, seconds: float
) -> Iterator[RunningEmulator]:
    # ARM throttling off and no Retry-After: only the Resource Graph quota paces the reads.
    with running_emulator(
        fleet, throttle="off", retry_after=0, graph_quota=queries, graph_window_seconds=seconds
    ) as emu:
        yield emu


@pytest.fixture(scope="module")
def tight(fleet: dict[str, Any]) -> Iterator[RunningEmulator]:
    """Four Resource Graph queries a second: a sweep of small pages runs into the quota."""
    yield from _with_graph_quota(fleet, queries=4, seconds=1.0)


def _read_all(emu: RunningEmulator, tmp_path: Path, **options: Any) -> tuple[int, GraphInventory]:
    with AzureSession(settings_for(emu, tmp_path)) as session:
        inventory = GraphInventory(session, **options)
        subs = inventory.subscriptions(None)
        observed = list(inventory.observations(subs))
    return len(observed), inventory


def test_a_sweep_stays_inside_the_graph_quota(tight: RunningEmulator, tmp_path: Path) -> None:
    tight.admin.reset_throttle()
    tight.admin.reset_stats()
    count, inventory = _read_all(tight, tmp_path, page_rows=20, chunk_clusters=40)
    assert count == CLUSTERS
    stats = tight.admin.stats()
    assert stats["throttled"]["graph"] == 0
    assert stats["graphQueries"] == inventory.stats.queries > 8  # more than two windows' worth
    assert inventory.stats.quota_waits >= 2
    assert inventory.stats.throttled == 0


@pytest.fixture(scope="module")
def slow_window(fleet: dict[str, Any]) -> Iterator[RunningEmulator]:
    """Three queries per 3 s: quota spent by someone else stays spent while fleet starts."""
    yield from _with_graph_quota(fleet, queries=3, seconds=3.0)


def test_quota_spent_by_someone_else_is_waited_out(
    slow_window: RunningEmulator, tmp_path: Path
) -> None:
    """Another client of the same principal has spent the window's quota when fleet starts:
    fleet's first query gets a 429, waits its Retry-After, and still reads every cluster
    once (the pacer learns nothing from its own history here: only the 429 tells it)."""
    slow_window.admin.reset_throttle()
    slow_window.admin.reset_stats()
    with AzureSession(
        settings_for(slow_window, tmp_path / "other"), credential=EmulatorCredential()
    ) as other:
        client = other.graph()
        for _ in range(3):  # the whole window's quota, without any pacing
            client.resources({"query": "resources | take 1", "subscriptions": []})
    count, inventory = _read_all(slow_window, tmp_path, page_rows=50, chunk_clusters=60)
    assert count == CLUSTERS
    assert inventory.stats.throttled >= 1
    assert slow_window.admin.stats()["throttled"]["graph"] == inventory.stats.throttled
    assert inventory.stats.cluster_rows == CLUSTERS

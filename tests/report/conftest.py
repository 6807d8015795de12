"""A recorded history for the renderer tests: the sample sweeps stored in SQLite and read back
through the store, exactly as ``fleet report`` reads them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.record.history import History, open_history
from fleet.report.changes import diff
from fleet.report.common import Context
from tests.report.sample import SWEEP_IDS, reports

#: "Now" for every rendering: 2 h after the latest sweep finished.
NOW = datetime(2026, 11, 25, 8, 0, 44, 500000, tzinfo=UTC)


@dataclass
class Recorded:
    url: str
    path: Path
    history: History
    report: dict[str, Any]  # the latest sweep, loaded from the store
    context: Context  # previous sweep, what changed, trend: what md/html get from the CLI


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    path = tmp_path_factory.mktemp("history") / "fleet.db"
    url = f"sqlite:///{path}"
    with open_history(url, upgrade=True) as history:
        for report in reports():
            history.record_sweep(report)
        latest, previous = SWEEP_IDS[2], SWEEP_IDS[1]
        before = history.header(previous)
        report = history.load_report(latest)
        changes = diff(
            history.iter_clusters(previous),
            history.iter_clusters(latest),
            before_info=before["sweep"],
            after_info=report["sweep"],
        )
        context = Context(previous=before, changes=changes, trends=history.trends(), now=NOW)
        yield Recorded(url, path, history, report, context)

"""Render a recorded sweep from the history database, with what it needs from history:
the comparison with the previous sweep and the trend. Used by ``fleet report`` and the demo.
"""

from __future__ import annotations

from typing import Any, TextIO

from fleet.record.history import History
from fleet.report.changes import diff
from fleet.report.common import Context
from fleet.report.model import summarize
from fleet.report.render import SUMMARY_ONLY, USES_HISTORY, render

#: Changed findings kept in the "what changed" section (the rest are counted, not listed).
CHANGES_KEPT = 1000


def history_context(
    history: History,
    sweep_id: str,
    info: dict[str, Any],
    *,
    compare: str | None = None,
    trend: int = 30,
    base: Context | None = None,
) -> Context:
    """A renderer context with the previous sweep, the changes since it, and the trend."""
    base = base or Context()
    previous_id = (
        history.resolve(compare) if compare else history.previous(sweep_id, complete_only=True)
    )
    previous = changes = None
    if previous_id is not None and previous_id != sweep_id:
        previous = history.header(previous_id)
        changes = diff(
            history.iter_clusters(previous_id),
            history.iter_clusters(sweep_id),
            before_info=previous["sweep"],
            after_info=info,
            limit=CHANGES_KEPT,
        )
    return Context(
        previous=previous,
        changes=changes,
        trends=history.trends(trend, until=sweep_id),
        now=base.now,
        policyreport_api=base.policyreport_api,
        policyreport_namespace=base.policyreport_namespace,
        listed=base.listed,
    )


def render_recorded(
    history: History,
    sweep_id: str,
    fmt: str,
    out: TextIO,
    *,
    compare: str | None = None,
    trend: int = 30,
    base: Context | None = None,
) -> bool:
    """Render one recorded sweep; returns False when its summary had to be recomputed (an
    unfinished sweep)."""
    head = history.header(sweep_id)
    info, summary = head.pop("sweep"), head.pop("summary")
    finished = summary is not None
    if summary is None:
        summary = summarize(history.iter_clusters(sweep_id))
    context = base or Context()
    if fmt in USES_HISTORY:
        context = history_context(
            history, sweep_id, info, compare=compare, trend=trend, base=context
        )
    clusters: Any = () if fmt in SUMMARY_ONLY else history.iter_clusters(sweep_id)
    render(fmt, {"sweep": info, "summary": summary, "clusters": clusters, **head}, out, context)
    return finished

"""Compliance over time: per sweep, per policy and per subscription.

Input is ``History.trends()`` (oldest first: each sweep's id, time and summary counts); output
is series ready for a chart or a table. Percentages use ``model.compliance_percent``, the
formula of the report's headline, so a trend point and that sweep's report never disagree. A
policy or subscription absent from a sweep has ``None`` there (a gap, not a zero).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleet.report.model import compliance_percent

SPARKS = "▁▂▃▄▅▆▇█"


def series(trends: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"sweeps": [...], "policies": {name: [pct|None]}, "subscriptions": {id: [...]}}``."""
    sweeps = [
        {
            "id": t.get("id"),
            "finishedAt": t.get("finishedAt"),
            "policyRevision": t.get("policyRevision"),
            "clusters": t.get("clusters", 0),
            "compliancePercent": t.get("compliancePercent"),
            "byState": dict(t.get("byState") or {}),
        }
        for t in trends
    ]
    return {
        "sweeps": sweeps,
        "policies": _per(trends, "byPolicy"),
        "subscriptions": _per(trends, "bySubscription"),
    }


def _per(trends: Sequence[Mapping[str, Any]], field: str) -> dict[str, list[float | None]]:
    names = sorted({name for t in trends for name in (t.get(field) or {})})
    out: dict[str, list[float | None]] = {}
    for name in names:
        values: list[float | None] = []
        for t in trends:
            counts = (t.get(field) or {}).get(name)
            values.append(
                None if not counts or not sum(counts.values()) else compliance_percent(counts)
            )
        out[name] = values
    return out


def sparkline(values: Sequence[float | None]) -> str:
    """A text sparkline over 0-100 (a space where a value is missing)."""
    chars = []
    for v in values:
        if v is None:
            chars.append(" ")
        else:
            chars.append(
                SPARKS[min(len(SPARKS) - 1, int(max(0.0, min(100.0, v)) / 100 * len(SPARKS)))]
            )
    return "".join(chars)


def delta(values: Sequence[float | None]) -> float | None:
    """The change between the last two known values (None when there are fewer than two)."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    return round(known[-1] - known[-2], 2)

"""What every renderer shares: the rendering context, state order, colours and small helpers.

Renderers read a report (``fleet.report.model``: ``{"sweep", "summary", "clusters"}``) whose
``clusters`` may be a list or a one-pass iterator (``History.iter_clusters``), so a 50,000-
cluster report never has to be held in memory as dicts. The ``Context`` carries what a report
alone does not know: the sweep compared against, what changed since, the trend, and "now".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleet.core.vocabulary import CODE_SEVERITY, NON_COUNTING, STATE_RANK, Code, State

Report = Mapping[str, Any]
Cluster = Mapping[str, Any]

#: States from best to worst (docs/contracts.md, Compliance vocabulary: that order reversed).
STATES: tuple[str, ...] = tuple(s.value for s in sorted(State, key=STATE_RANK.__getitem__))
STATE_INDEX = {s: i for i, s in enumerate(STATES)}
#: Finding codes in the contract's order.
CODES: tuple[str, ...] = tuple(c.value for c in Code)
SEVERITY_ORDER = ("high", "medium", "low", "warning", "info")
SEVERITY_INDEX = {s: i for i, s in enumerate(SEVERITY_ORDER)}

#: Colour per state: colour-blind safe (distinct in lightness and hue, after Okabe-Ito and
#: Paul Tol) and at least 5:1 against white, so white text on them passes WCAG AA. Never the
#: only cue: every use also prints the state's name (and a symbol).
STATE_COLOURS = {
    "compliant": "#007A5A",
    "exempt": "#4B3FA8",
    "unknown": "#6B6B6B",
    "noncompliant": "#B84E00",
    "conflicting": "#AA4499",
    "error": "#222222",
}
STATE_SYMBOLS = {
    "compliant": "✓",
    "exempt": "⊘",
    "unknown": "?",
    "noncompliant": "✗",
    "conflicting": "⇄",
    "error": "!",
}
#: Findings that belong to no policy (e.g. an unmanaged configuration nobody governs) are
#: attributed to this pseudo-policy where a format needs a policy name (JUnit, PolicyReport).
UNOWNED = "(unowned)"


@dataclass(frozen=True)
class Context:
    """What a renderer may need beyond the report itself (all optional)."""

    #: ``{"sweep": ..., "summary": ...}`` of the sweep the report is compared against.
    previous: Mapping[str, Any] | None = None
    #: ``fleet.report.changes.diff`` between ``previous`` and this report.
    changes: Mapping[str, Any] | None = None
    #: ``History.trends()`` (oldest first), this sweep included.
    trends: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    #: "Now", for ages and generation stamps (tests pin it).
    now: datetime | None = None
    #: PolicyReport API: ``wgpolicyk8s.io/v1alpha2`` (default) or ``openreports.io/v1alpha1``.
    policyreport_api: str = "wgpolicyk8s.io/v1alpha2"
    #: Emit namespaced reports in this namespace instead of cluster-scoped ones.
    policyreport_namespace: str | None = None
    #: Markdown: how many clusters that are not compliant are listed one line each (the worst
    #: first); None lists every one (``fleet report show --format md --all``).
    listed: int | None = 500

    def at(self) -> datetime:
        return self.now or datetime.now(UTC)


def full_summary(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The summary with every key present (older recorders wrote fewer), so renderers and
    templates never meet a missing key: absent counts are zero, absent maps empty."""
    out: dict[str, Any] = {
        "clusters": 0,
        "compliancePercent": None,
        "byFinding": {},
        "findingsTotal": {},
        "extensionVersions": {},
        "versionWindow": {"inWindow": 0, "outOfWindow": 0, "notInstalled": 0},
        "byPolicy": {},
        "bySubscription": {},
        "fluxCommits": {},
    }
    out.update(summary or {})
    out["byState"] = {s: int((out.get("byState") or {}).get(s, 0)) for s in STATES}
    if not out.get("findingsTotal"):
        out["findingsTotal"] = dict(out.get("byFinding") or {})
    return out


def counting(finding: Mapping[str, Any]) -> bool:
    """Whether a finding counts towards its policy's state (warning/info ones never do)."""
    return finding.get("severity") not in NON_COUNTING


def severity_of(finding: Mapping[str, Any]) -> str:
    sev = finding.get("severity")
    if isinstance(sev, str) and sev in SEVERITY_INDEX:
        return sev
    return code_severity(str(finding.get("code")))


def code_severity(code: str) -> str:
    try:
        return CODE_SEVERITY[Code(code)].value
    except ValueError:
        return "medium"


def state_rank(state: str) -> int:
    return STATE_INDEX.get(state, 0)


def show(value: Any, limit: int | None = None) -> str:
    """A value as compact JSON text (strings quoted, so "true" and true differ)."""
    if value is None:
        text = "null"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            text = str(value)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def parse_iso(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def short_time(value: Any) -> str:
    """``2026-11-25 06:00 UTC`` from an ISO timestamp ("" when absent)."""
    parsed = parse_iso(value)
    return "" if parsed is None else parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(first_seen: Any, at: Any) -> str:
    """How long a finding has been seen, at the time of its sweep: ``3 d``, ``5 h``,
    ``12 min``, ``new`` (first seen by this sweep; "" when the history has no time for it)."""
    start, end = parse_iso(first_seen), parse_iso(at)
    if start is None or end is None:
        return ""
    seconds = max(0.0, (end - start).total_seconds())
    if seconds >= 86400:
        return f"{int(seconds // 86400)} d"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 60)} min" if seconds >= 60 else "new"


def sweep_time(sweep: Mapping[str, Any]) -> Any:
    """The moment a sweep's ages are measured at: when it started (the time its new
    findings were first seen at), so a finding new in this sweep is "new"."""
    return sweep.get("startedAt") or sweep.get("finishedAt")


def modified_by(finding: Mapping[str, Any]) -> str:
    """``ops@contoso.com (User), 2026-11-22 09:30 UTC`` from ``lastModified`` ("" if absent)."""
    who = finding.get("lastModified")
    if not isinstance(who, Mapping) or not who.get("by"):
        return ""
    kind = f" ({who['byType']})" if who.get("byType") else ""
    when = short_time(who.get("at")) if who.get("at") else ""
    return f"{who['by']}{kind}" + (f", {when or who.get('at')}" if who.get("at") else "")


def resource_name(resource_id: str) -> str:
    """The last segment of an ARM id (``cluster-config`` of a fluxConfigurations id)."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def resource_kind(resource_id: str) -> str:
    """The ARM type's last segment of the resource an id names (``fluxConfigurations``)."""
    parts = resource_id.strip("/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


def ordered_states(by_state: Mapping[str, int]) -> list[tuple[str, int]]:
    return [(s, int(by_state.get(s, 0))) for s in STATES]


def worst_first(clusters: Iterable[Cluster]) -> list[Cluster]:
    """Clusters worst state first, then by counting findings, then by name."""
    return sorted(
        clusters,
        key=lambda c: (
            -state_rank(c.get("state", "")),
            -sum(1 for f in c.get("findings") or () if counting(f)),
            str(c.get("name", "")).lower(),
        ),
    )

"""``--format html``: one self-contained page for the engineer and for the manager.

The page is a Jinja2 template (autoescaped) with the CSS, the JavaScript and the charts
(inline SVG) inside it: no CDN, no fonts, no requests at view time; a Content-Security-Policy
with the hashes of the one script and the one style makes that a guarantee, and stops any
injected markup from running. Static parts (headline, states, trend, what changed, findings,
versions, commit convergence, policies, subscriptions) are rendered here; the cluster table is
drawn by vanilla JavaScript from data embedded as JSON in ``<script type="application/json">``.

Scale: the clusters are packed before embedding. Strings (names, resource groups, messages,
paths, values) are interned into one table and rows refer to them by index, a cluster id is
rebuilt from its parts when it is canonical, and a finding's resource is stored relative to
its cluster. The browser filters and sorts integer arrays and only ever creates one page of
table rows, so 50,000 clusters stay responsive (docs/reports.md has the measurements).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC
from importlib import resources
from typing import Any, TextIO

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from fleet.report import charts
from fleet.report.common import (
    CODES,
    SEVERITY_INDEX,
    SEVERITY_ORDER,
    STATE_COLOURS,
    STATE_INDEX,
    STATE_SYMBOLS,
    STATES,
    Cluster,
    Context,
    Report,
    age,
    code_severity,
    full_summary,
    modified_by,
    percent,
    short_time,
    show,
    sweep_time,
)
from fleet.report.convergence import Convergence
from fleet.report.model import compliance_percent
from fleet.report.trends import delta, series

#: Entries of each "what changed" list rendered into the page (the counts are exact; the
#: full lists are one ``fleet report diff --format json`` away).
CHANGES_SHOWN = 200
_PROVIDERS = {
    "managedClusters": "Microsoft.ContainerService/managedClusters",
    "connectedClusters": "Microsoft.Kubernetes/connectedClusters",
}


class _Packer:
    """Packs verdicts into compact rows that reference one interned string table."""

    def __init__(self, at: Any = None) -> None:
        #: The sweep's time, that finding ages are measured at.
        self.at = at
        self.strings: list[str] = []
        self._index: dict[str, int] = {}
        self.codes: list[str] = list(CODES)
        self._code_index = {c: i for i, c in enumerate(self.codes)}
        self.rows: list[list[Any]] = []
        self.versions: dict[str, dict[str, int]] = {}

    def s(self, value: Any) -> int:
        if value is None:
            return -1
        text = value if isinstance(value, str) else str(value)
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.strings)
            self.strings.append(text)
        return found

    def code(self, code: Any) -> int:
        text = str(code)
        found = self._code_index.get(text)
        if found is None:
            found = self._code_index[text] = len(self.codes)
            self.codes.append(text)
        return found

    def add(self, c: Cluster) -> None:
        cid = str(c["id"])
        ctype = str(c.get("type", ""))
        sub, rg, name = (
            str(c.get("subscriptionId", "")),
            str(c.get("resourceGroup", "")),
            str(c.get("name", "")),
        )
        rebuilt = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{_PROVIDERS.get(ctype, '')}/{name}"
        )
        id_ref = -1 if rebuilt == cid else self.s(cid)
        prefix = cid + "/"
        tags: list[int] = []
        for k, v in (c.get("tags") or {}).items():
            tags += [self.s(k), self.s(v)]
        policies = [
            [
                self.s(p.get("name")),
                STATE_INDEX.get(str(p.get("state")), 0),
                self.s(p.get("mode")),
                self.s(p.get("reason")),
                self.s(p.get("expiresOn")),
            ]
            for p in c.get("policies") or ()
        ]
        findings = []
        for f in c.get("findings") or ():
            resource = str(f.get("resource") or cid)
            if resource == cid:
                res = -1
            elif resource.startswith(prefix):
                res = -(self.s(resource[len(prefix) - 1 :]) + 2)
            else:
                res = self.s(resource)
            valued = (
                f.get("path") is not None
                or f.get("desired") is not None
                or f.get("actual") is not None
            )
            findings.append(
                [
                    self.code(f.get("code")),
                    SEVERITY_INDEX.get(str(f.get("severity")), 1),
                    self.s(f.get("policy")),
                    res,
                    self.s(f.get("path")),
                    self.s(show(f.get("desired"))) if valued else -1,
                    self.s(show(f.get("actual"))) if valued else -1,
                    self.s(f.get("message")),
                    self.s(_seen(f, self.at)),
                    self.s(modified_by(f) or None),
                ]
            )
        window = c.get("extensionVersionInWindow")
        version = c.get("extensionVersion")
        if version:
            slot = self.versions.setdefault(str(version), {"in": 0, "out": 0, "unjudged": 0})
            slot["in" if window is True else "out" if window is False else "unjudged"] += 1
        self.rows.append(
            [
                self.s(name),
                self.s(ctype),
                self.s(sub),
                self.s(rg),
                self.s(c.get("location")),
                STATE_INDEX.get(str(c.get("state")), 0),
                self.s(version),
                1 if window is True else 0 if window is False else -1,
                self.s(c.get("status")),
                id_ref,
                tags,
                policies,
                findings,
                1 if c.get("arm64") else 0,
            ]
        )


def _seen(finding: Mapping[str, Any], at: Any) -> str | None:
    """``3 d (since 2026-11-22 06:00 UTC)`` for the drill-down; None without a first-seen time."""
    howlong = age(finding.get("firstSeen"), at)
    if howlong == "new":
        return "new in this sweep"
    return f"{howlong} (since {short_time(finding.get('firstSeen'))})" if howlong else None


def _script_json(data: Any) -> Markup:
    """JSON safe inside ``<script>``: no ``</script>``, no ``<!--``, no HTML at all."""
    text = orjson.dumps(data).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def _asset(name: str) -> str:
    return resources.files("fleet.report").joinpath("static", name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
    )


def _window_label(slot: Mapping[str, int]) -> str:
    if slot.get("out") and slot.get("in"):
        return "mixed"
    if slot.get("out"):
        return "out of window"
    if slot.get("in"):
        return "in window"
    return "not judged"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("fleet.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = percent
    env.filters["when"] = short_time
    env.filters["show"] = lambda v: show(v, 200)
    env.globals.update(
        STATES=STATES,
        STATES_WORST_FIRST=tuple(reversed(STATES)),
        SYMBOLS=STATE_SYMBOLS,
        COLOURS=STATE_COLOURS,
        code_severity=code_severity,
        compliance=compliance_percent,
        sparkline=charts.sparkline,
    )
    return env


def _groups(
    groups: Mapping[str, Mapping[str, int]], history: Mapping[str, Sequence[float | None]]
) -> list[dict[str, Any]]:
    out = []
    for name, counts in groups.items():
        values = list(history.get(name, ()))
        out.append(
            {
                "name": name,
                "counts": counts,
                "total": sum(int(v) for v in counts.values()),
                "percent": compliance_percent(counts),
                "history": values,
                "delta": delta(values),
            }
        )
    return out


def write_html(report: Report, out: TextIO, context: Context | None = None) -> None:
    ctx = context or Context()
    sweep = report["sweep"]
    summary = full_summary(report.get("summary"))
    packer = _Packer(sweep_time(sweep))
    convergence = Convergence(summary.get("fluxCommits"))
    for cluster in report["clusters"]:
        packer.add(cluster)
        convergence.add(cluster)

    trend = (
        series(ctx.trends) if ctx.trends else {"sweeps": [], "policies": {}, "subscriptions": {}}
    )
    versions = [
        (v, n, _window_label(packer.versions.get(v, {})))
        for v, n in (summary.get("extensionVersions") or {}).items()
    ]
    by_state = summary.get("byState") or {}
    clusters = int(summary.get("clusters") or 0)
    action = sum(int(by_state.get(s, 0)) for s in ("noncompliant", "conflicting", "error"))
    previous = ctx.previous
    change = None
    if previous and previous.get("summary") and summary.get("compliancePercent") is not None:
        before = previous["summary"].get("compliancePercent")
        if before is not None:
            change = round(float(summary["compliancePercent"]) - float(before), 2)
    data = {
        "v": 1,
        "sweep": {k: sweep.get(k) for k in ("id", "finishedAt", "policyRevision")},
        "s": packer.strings,
        "states": list(STATES),
        "symbols": [STATE_SYMBOLS[s] for s in STATES],
        "codes": packer.codes,
        "severities": list(SEVERITY_ORDER),
        "providers": _PROVIDERS,
        "rows": packer.rows,
    }
    css = _asset("report.css")
    js = _asset("report.js")
    csp = (
        f"default-src 'none'; script-src {_hash(js)}; style-src {_hash(css)}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    template = _environment().get_template("report.html.j2")
    stream = template.generate(
        sweep=sweep,
        summary=summary,
        by_state=by_state,
        clusters=clusters,
        action=action,
        change=change,
        previous=previous,
        changes=ctx.changes,
        changes_shown=CHANGES_SHOWN,
        trend=trend,
        trend_chart=charts.trend_chart(ctx.trends) if ctx.trends else Markup(""),
        state_bar=charts.state_bar(by_state),
        versions=versions,
        version_chart=charts.version_bars(versions),
        commits=convergence.rows(),
        policies=_groups(summary.get("byPolicy") or {}, trend["policies"]),
        subscriptions=_groups(summary.get("bySubscription") or {}, trend["subscriptions"]),
        generated=ctx.at().astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        css=Markup(css),
        js=Markup(js),
        csp=csp,
        data=_script_json(data),
    )
    for chunk in stream:
        out.write(chunk)

"""``--format md``: the report as Markdown for a pull request, a wiki page or a chat message.

Sections: headline, states, what changed since the previous sweep, top findings, extension
versions (N-2), commit convergence (per flux configuration: clusters per commit, the majority,
who lags), per policy, per subscription, every cluster that is not compliant (one line each),
and the worst clusters with their findings. Everything that came from a cluster or a
policy (names, tags, messages, values) is escaped: table pipes, HTML, and Markdown emphasis, so
a hostile tag cannot break the page or inject markup where the Markdown is rendered.

A compliance report must not drop a cluster silently: the one-line list holds every cluster
that is not compliant up to ``Context.listed`` (500 by default, the worst first) and then says
exactly how many it left out and the command that lists them all (``--all``). Details are for
the worst ``WORST``; other long lists (changes) say how many more there are, too.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from fleet.report.common import (
    STATE_SYMBOLS,
    STATES,
    Context,
    Report,
    age,
    code_severity,
    counting,
    full_summary,
    modified_by,
    parse_iso,
    percent,
    severity_of,
    short_time,
    show,
    state_rank,
    sweep_time,
)
from fleet.report.convergence import Convergence
from fleet.report.model import compliance_percent
from fleet.report.trends import delta, series, sparkline

WORST = 15
FINDINGS_PER_CLUSTER = 8
CHANGES = 20

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def esc(value: Any) -> str:
    """Plain text safe in a Markdown table cell: no HTML, no emphasis, no pipes, one line."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def code(value: Any, limit: int = 80) -> str:
    """A value as inline code (JSON text, so strings show their quotes)."""
    return lit(show(value, limit))


def lit(value: Any) -> str:
    """Text as inline code: shown verbatim (no HTML, no emphasis), with a fence longer than any
    backtick run inside and table pipes escaped (GFM honours ``\\|`` inside code spans)."""
    text = " ".join(("" if value is None else str(value)).split()).replace("|", "\\|")
    if not text:
        return ""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def badge(state: str) -> str:
    return f"{STATE_SYMBOLS.get(state, '')} {state}".strip()


def _table(
    out: TextIO, header: Sequence[str], rows: Sequence[Sequence[str]], align: str = ""
) -> None:
    out.write("| " + " | ".join(header) + " |\n")
    marks = [
        ("---:" if a == "r" else "---")
        for a in (align or "l" * len(header)).ljust(len(header), "l")
    ]
    out.write("| " + " | ".join(marks) + " |\n")
    for row in rows:
        out.write("| " + " | ".join(row) + " |\n")
    out.write("\n")


def write_markdown(report: Report, out: TextIO, context: Context | None = None) -> None:
    ctx = context or Context()
    sweep = report["sweep"]
    summary = full_summary(report.get("summary"))
    worst: list[tuple[tuple[int, int, str], int, Mapping[str, Any]]] = []
    # One line per cluster that is not compliant: small tuples, so a 50,000-cluster fleet
    # costs a few megabytes; cut to ``ctx.listed`` only when written.
    lines: list[tuple[int, int, int, list[str]]] = []
    versions: dict[str, dict[str, int]] = {}
    convergence = Convergence(summary.get("fluxCommits"))
    for i, c in enumerate(report["clusters"]):
        convergence.add(c)
        version = c.get("extensionVersion")
        if version:
            window = c.get("extensionVersionInWindow")
            slot = versions.setdefault(version, {"in": 0, "out": 0, "unjudged": 0})
            slot["in" if window is True else "out" if window is False else "unjudged"] += 1
        if c.get("state") in ("compliant", "exempt"):
            continue
        n = sum(1 for f in c.get("findings") or () if counting(f))
        rank = (state_rank(str(c.get("state"))), n, "")
        lines.append((-rank[0], -n, i, _line(c, n, sweep_time(sweep))))
        # Keep the WORST worst clusters (a heap: one pass, memory flat in the fleet size).
        item = (rank, -i, c)
        if len(worst) < WORST:
            heapq.heappush(worst, item)
        elif item[:2] > worst[0][:2]:
            heapq.heapreplace(worst, item)

    clusters = summary.get("clusters", 0)
    out.write(f"# Fleet compliance: {percent(summary.get('compliancePercent'))}\n\n")
    prev = ctx.previous
    trend_line = ""
    if prev is not None and prev.get("summary"):
        before = prev["summary"].get("compliancePercent")
        now = summary.get("compliancePercent")
        if before is not None and now is not None:
            trend_line = f" ({now - before:+.1f} points since {esc(prev['sweep'].get('id'))})"
    out.write(
        f"**{clusters}** clusters judged in sweep {lit(sweep.get('id'))}, finished "
        f"{esc(short_time(sweep.get('finishedAt')) or 'not yet')}; compliance "
        f"**{percent(summary.get('compliancePercent'))}**{trend_line}. Policy revision "
        f"{lit(sweep.get('policyRevision'))}, engine {esc(sweep.get('engine'))}, inventory "
        f"{esc(sweep.get('inventory', 'arm'))}.\n\n"
    )
    if sweep.get("complete") is False or sweep.get("interrupted"):
        out.write(
            "> **Incomplete sweep**: it stopped before judging every targeted cluster "
            f"({clusters} of {sweep.get('targets', '?')}); do not read it as the whole fleet.\n\n"
        )

    out.write("## States\n\n")
    by_state = summary.get("byState") or {}
    rows = [
        [
            badge(s),
            str(by_state.get(s, 0)),
            percent(100.0 * by_state.get(s, 0) / clusters if clusters else None),
        ]
        for s in reversed(STATES)
    ]
    _table(out, ["State", "Clusters", "Share"], rows, "lrr")

    if ctx.trends and len(ctx.trends) > 1:
        s = series(ctx.trends)
        values = [p["compliancePercent"] for p in s["sweeps"]]
        out.write(
            f"Compliance over the last {len(values)} sweeps: `{sparkline(values)}` "
            + " → ".join(percent(v) for v in values[-6:])
            + "\n\n"
        )

    _changes(out, ctx.changes)

    out.write("## Top findings\n\n")
    by_finding = summary.get("byFinding") or {}
    totals = summary.get("findingsTotal") or {}
    if by_finding:
        rows = [
            [lit(k), code_severity(k), str(v), str(totals.get(k, v))]
            for k, v in list(by_finding.items())[:15]
        ]
        _table(out, ["Finding", "Severity", "Clusters", "Findings"], rows, "llrr")
    else:
        out.write("No findings.\n\n")

    out.write("## Extension versions (N-2 window)\n\n")
    window = summary.get("versionWindow") or {}
    out.write(
        f"In window: **{window.get('inWindow', 0)}**, out of window: "
        f"**{window.get('outOfWindow', 0)}**, not installed: "
        f"**{window.get('notInstalled', 0)}**.\n\n"
    )
    ext = summary.get("extensionVersions") or {}
    if ext:
        rows = []
        for version, n in ext.items():
            slot = versions.get(version, {})
            verdict = (
                "in window"
                if slot.get("in") and not slot.get("out")
                else (
                    "out of window"
                    if slot.get("out") and not slot.get("in")
                    else "mixed"
                    if slot.get("out")
                    else "not judged"
                )
            )
            rows.append([lit(version), str(n), verdict])
        _table(out, ["Version", "Clusters", "Window"], rows, "lrl")

    _commits(out, convergence)

    trend = series(ctx.trends) if ctx.trends else None
    _group_table(
        out, "Policies", "Policy", summary.get("byPolicy") or {}, trend["policies"] if trend else {}
    )
    _group_table(
        out,
        "Subscriptions",
        "Subscription",
        summary.get("bySubscription") or {},
        trend["subscriptions"] if trend else {},
    )

    _listing(out, lines, ctx.listed, sweep.get("id"))

    out.write("## Worst clusters\n\n")
    if not worst:
        out.write("Every cluster is compliant or exempt.\n\n")
    for _, _, c in sorted(worst, key=lambda item: (item[0][0], item[0][1], item[1]), reverse=True):
        out.write(
            f"### {esc(c.get('name'))} — {badge(str(c.get('state')))}\n\n"
            f"{lit(c.get('id'))}  \n"
            f"{esc(c.get('type'))} in {esc(c.get('location'))}, resource group "
            f"{esc(c.get('resourceGroup'))}; extension "
            f"{esc(c.get('extensionVersion') or 'not installed')}"
            + (f"; status {esc(c.get('status'))}" if c.get("status") else "")
            + "\n\n"
        )
        fs = sorted(
            c.get("findings") or (), key=lambda f: (not counting(f), severity_of(f) != "high")
        )
        rows = [
            [
                lit(f.get("code")),
                severity_of(f),
                esc(f.get("policy") or "—"),
                lit(f.get("path")) if f.get("path") else "",
                code(f.get("desired")) if f.get("path") else "",
                code(f.get("actual")) if f.get("path") else "",
                age(f.get("firstSeen"), sweep_time(sweep)),
                esc(modified_by(f)),
                esc(f.get("message")),
            ]
            for f in fs[:FINDINGS_PER_CLUSTER]
        ]
        if rows:
            _table(
                out,
                [
                    "Finding",
                    "Severity",
                    "Policy",
                    "Path",
                    "Desired",
                    "Actual",
                    "For",
                    "Last modified by",
                    "Message",
                ],
                rows,
            )
        if len(fs) > FINDINGS_PER_CLUSTER:
            out.write(f"…and {len(fs) - FINDINGS_PER_CLUSTER} more findings.\n\n")
    out.write(f"_Generated by fleet from sweep {lit(sweep.get('id'))}._\n")


def _commits(out: TextIO, convergence: Convergence) -> None:
    """Per flux configuration: the commits clusters run, the majority marked, who lags."""
    rows = convergence.rows()
    if not rows:
        return
    out.write("## Commit convergence\n\n")
    for config in rows:
        state = (
            "converged" if config["converged"] else f"{config['onMajority']:.1f}% on the majority"
        )
        out.write(f"### {esc(config['name'])}: {config['clusters']} clusters, {state}\n\n")
        _table(
            out,
            ["Commit", "Clusters", "Share", ""],
            [
                [
                    lit(c["short"]) if c["commit"] else "not synced",
                    str(c["clusters"]),
                    f"{c['share']:.1f}%",
                    "**majority**" if c["majority"] else "",
                ]
                for c in config["commits"]
            ],
            "lrrl",
        )
        if config["lagging"]:
            more = f" and {config['laggingMore']} more" if config["laggingMore"] else ""
            out.write(
                "Not on the majority commit: "
                + ", ".join(f"{esc(n['name'])} ({lit(n['commit'])})" for n in config["lagging"])
                + more
                + ".\n\n"
            )


def _line(c: Mapping[str, Any], counted: int, at: Any) -> list[str]:
    """A cluster's row in the list of clusters that are not compliant."""
    codes = sorted({str(f.get("code")) for f in c.get("findings") or () if counting(f)})
    seen = [
        t
        for f in c.get("findings") or ()
        if counting(f) and (t := parse_iso(f.get("firstSeen"))) is not None
    ]
    oldest = age(min(seen).isoformat(), at) if seen else ""
    shown = ", ".join(lit(k) for k in codes[:3]) + (f" +{len(codes) - 3}" if len(codes) > 3 else "")
    return [
        esc(c.get("name")),
        badge(str(c.get("state"))),
        str(counted),
        shown,
        oldest,
        esc(c.get("resourceGroup")),
        lit(c.get("subscriptionId")),
    ]


def _listing(
    out: TextIO,
    lines: list[tuple[int, int, int, list[str]]],
    limit: int | None,
    sweep_id: Any,
) -> None:
    """Every cluster that is not compliant, one line each, or the exact count left out."""
    out.write("## Clusters not compliant\n\n")
    if not lines:
        out.write("None: every cluster is compliant or exempt.\n\n")
        return
    lines.sort(key=lambda line: line[:3])
    shown = lines if limit is None else lines[: max(0, limit)]
    out.write(f"**{len(lines)}** clusters are not compliant, the worst first.\n\n")
    _table(
        out,
        ["Cluster", "State", "Findings", "Codes", "Oldest", "Resource group", "Subscription"],
        [line[3] for line in shown],
        "llrlrll",
    )
    left = len(lines) - len(shown)
    if left:
        out.write(
            f"**{left}** more clusters that are not compliant are not listed here (the "
            f"first {len(shown)} are). "
            + lit(f"fleet report show {sweep_id} --format md --all")
            + " lists every one; `--format csv` has one row per finding.\n\n"
        )


def _group_table(
    out: TextIO,
    title: str,
    label: str,
    groups: Mapping[str, Mapping[str, int]],
    history: Mapping[str, list[float | None]],
) -> None:
    if not groups:
        return
    out.write(f"## {title}\n\n")
    header = [label, "Compliance", *[badge(s) for s in reversed(STATES)]]
    align = "lr" + "r" * len(STATES)
    if history:
        header.append("Trend")
        align += "l"
    rows = []
    for name, counts in groups.items():
        row = [
            esc(name),
            percent(compliance_percent(counts)),
            *[str(counts.get(s, 0)) for s in reversed(STATES)],
        ]
        if history:
            values = history.get(name, [])
            change = delta(values)
            row.append(f"`{sparkline(values)}`" + (f" {change:+.1f}" if change else ""))
        rows.append(row)
    _table(out, header, rows, align)


def _changes(out: TextIO, changes: Mapping[str, Any] | None) -> None:
    out.write("## What changed\n\n")
    if changes is None:
        out.write("No earlier sweep to compare with.\n\n")
        return
    write_changes(out, changes, heading_level=3)


def write_changes(out: TextIO, changes: Mapping[str, Any], *, heading_level: int = 2) -> None:
    """The diff of two sweeps as Markdown (also ``fleet report diff --format md``)."""
    h = "#" * heading_level
    counts = changes.get("counts") or {}
    before, after = changes.get("from") or {}, changes.get("to") or {}
    out.write(
        f"From sweep {lit(before.get('id'))} ({esc(short_time(before.get('finishedAt')))}) to "
        f"{lit(after.get('id'))} ({esc(short_time(after.get('finishedAt')))}): "
        f"**{counts.get('newDrift', 0)}** new findings, **{counts.get('fixed', 0)}** fixed, "
        f"**{counts.get('newClusters', 0)}** new clusters, "
        f"**{counts.get('goneClusters', 0)}** gone, "
        f"**{counts.get('stateChanges', 0)}** state changes ({counts.get('worse', 0)} worse, "
        f"{counts.get('better', 0)} better).\n\n"
    )
    for note in changes.get("notes") or ():
        out.write(f"> {esc(note.get('message'))}\n\n")
    for key, title in (("newDrift", "New findings"), ("fixed", "Fixed")):
        items = changes.get(key) or []
        if not items:
            continue
        out.write(f"{h} {title}\n\n")
        rows = [
            [
                esc(i.get("name")),
                lit(i.get("code")),
                esc(i.get("policy") or "—"),
                lit(i.get("path")) if i.get("path") else "",
                code(i.get("desired")) if i.get("path") else "",
                code(i.get("actual")) if i.get("path") else "",
            ]
            for i in items[:CHANGES]
        ]
        _table(out, ["Cluster", "Finding", "Policy", "Path", "Desired", "Actual"], rows)
        _more(out, counts.get(key, len(items)), CHANGES)
    for key, title in (("newClusters", "New clusters"), ("goneClusters", "Gone clusters")):
        items = changes.get(key) or []
        if not items:
            continue
        out.write(f"{h} {title}\n\n")
        rows = [
            [esc(i.get("name")), badge(str(i.get("state"))), lit(i.get("id"))]
            for i in items[:CHANGES]
        ]
        _table(out, ["Cluster", "State", "Id"], rows)
        _more(out, counts.get(key, len(items)), CHANGES)
    items = changes.get("stateChanges") or []
    if items:
        out.write(f"{h} State changes\n\n")
        rows = [
            [
                esc(i.get("name")),
                badge(str(i.get("from"))),
                badge(str(i.get("to"))),
                esc(i.get("direction")),
            ]
            for i in items[:CHANGES]
        ]
        _table(out, ["Cluster", "Was", "Now", "Direction"], rows)
        _more(out, counts.get("stateChanges", len(items)), CHANGES)


def _more(out: TextIO, total: int, shown: int) -> None:
    if total > shown:
        out.write(f"…and {total - shown} more (`fleet report diff --format json` lists all).\n\n")

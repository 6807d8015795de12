"""What an engineer reads first: the sweep summary and the plan, as rich renderables.

``format_*`` functions are pure (report or plan in, renderable out) so they are tested without
a terminal; the commands print them. A live progress bar (``SweepProgress``) draws on stderr
only when stderr is a terminal, so piped output stays clean.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from rich.console import Group, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from fleet.cli.common import err
from fleet.core.vocabulary import STATE_RANK, State
from fleet.plan.actions import Reason
from fleet.plan.pipeline import Judgement

STATE_STYLE = {
    "compliant": "green",
    "exempt": "cyan",
    "unknown": "yellow",
    "noncompliant": "red",
    "conflicting": "magenta",
    "error": "bold red",
}


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def format_summary(report: dict[str, Any], *, worst: int = 10, top: int = 10) -> RenderableType:
    """Counts by state, the worst clusters, the most common findings, the version spread."""
    sweep, summary, clusters = report["sweep"], report["summary"], report["clusters"]
    head = Text.assemble(
        ("Sweep ", "bold"),
        (sweep["id"], "bold cyan"),
        f"  {summary['clusters']} clusters  ",
        (f"{summary['compliancePercent']:.1f}% compliant", "bold"),
    )
    sub = Text(
        f"policies {sweep['policyRevision']}  {sweep.get('durationSeconds') or 0:.1f}s  "
        f"engine {sweep.get('engine', 'local')}  inventory {sweep.get('inventory', 'arm')}",
        style="dim",
    )
    parts: list[RenderableType] = [head, sub]
    if not sweep.get("complete", True):
        parts.append(
            Text(
                "INCOMPLETE: the sweep was stopped; only judged clusters are shown",
                style="bold yellow",
            )
        )

    states = Table(title="Clusters by state", title_justify="left", show_edge=False)
    states.add_column("state")
    states.add_column("clusters", justify="right")
    states.add_column("share", justify="right")
    total = max(1, summary["clusters"])
    for name, count in sorted(summary["byState"].items(), key=lambda kv: -STATE_RANK[State(kv[0])]):
        states.add_row(_state(name), str(count), f"{100 * count / total:.1f}%")
    parts.append(states)

    if summary["byFinding"]:
        findings = Table(
            title="Most common findings (clusters)",
            title_justify="left",
            show_edge=False,
            min_width=44,
        )
        findings.add_column("finding")
        findings.add_column("clusters", justify="right")
        for code, count in list(summary["byFinding"].items())[:top]:
            findings.add_row(code, str(count))
        parts.append(findings)

    ranked = sorted(
        (c for c in clusters if c["state"] != "compliant"),
        key=lambda c: (-STATE_RANK[State(c["state"])], -len(c["findings"]), c["name"]),
    )[:worst]
    if ranked:
        worst_table = Table(
            title=f"Worst clusters (top {len(ranked)})", title_justify="left", show_edge=False
        )
        worst_table.add_column("cluster")
        worst_table.add_column("state")
        worst_table.add_column("findings")
        for c in ranked:
            codes = Counter(f["code"] for f in c["findings"])
            worst_table.add_row(
                f"{c['name']} ({c['resourceGroup']})",
                _state(c["state"]),
                ", ".join(f"{k}×{n}" if n > 1 else k for k, n in sorted(codes.items())),
            )
        parts.append(worst_table)

    versions = summary.get("extensionVersions") or {}
    if versions:
        vt = Table(
            title="microsoft.flux versions", title_justify="left", show_edge=False, min_width=44
        )
        vt.add_column("version")
        vt.add_column("clusters", justify="right")
        for version, count in versions.items():
            vt.add_row(version, str(count))
        window = summary.get("versionWindow") or {}
        parts.append(vt)
        parts.append(
            Text(
                f"in window {window.get('inWindow', 0)}, "
                f"out of window {window.get('outOfWindow', 0)}, "
                f"not installed {window.get('notInstalled', 0)}",
                style="dim",
            )
        )
    return Group(*parts)


_CHANGE_STYLE = {"+": "green", "~": "yellow", "-": "red"}


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).replace("'", '"')


def format_plan(plan: dict[str, Any]) -> RenderableType:
    """A ``terraform plan``-style view: per cluster, per resource, per field."""
    lines = Text()
    counts = Counter[str]()
    for cluster in plan["clusters"]:
        actions, skipped = cluster.get("actions") or [], cluster.get("skipped") or []
        if not actions and not skipped:
            continue
        lines.append(f"\n# {cluster['clusterName']}", style="bold")
        lines.append(f"  {cluster['clusterId']}\n", style="dim")
        window = cluster.get("window")
        if window and window.get("open"):
            lines.append("  window: open now\n", style="dim")
        elif window:
            when = window.get("nextWindow") or "none within 400 days"
            lines.append(
                f"  deferred: {window.get('reason')}; next window {when}\n", style="yellow"
            )
        for action in actions:
            change = action["change"]
            counts[change] += 1
            style = _CHANGE_STYLE.get(change, "")
            resource = action["resourceId"].rsplit("/providers/", 1)[-1]
            lines.append(f"  {change} {action['method']} {resource}", style=style)
            reasons = ", ".join(str(Reason.model_validate(r)) for r in action["reasons"])
            lines.append(f"   ({reasons})\n", style="dim")
            for ch in action.get("changes") or []:
                lines.append(f"      {ch['path']}: ", style="dim")
                lines.append(_value(ch.get("actual")), style="red")
                lines.append(" -> ")
                lines.append(_value(ch.get("desired")) + "\n", style="green")
        for skip in skipped:
            resource = skip["resourceId"].rsplit("/providers/", 1)[-1]
            lines.append(f"  ! skip {resource}: {skip['code']}: {skip['reason']}\n", style="yellow")
    summary = Text(
        f"\nPlan: {counts['+']} to create, {counts['~']} to update, {counts['-']} to delete "
        f"on {sum(1 for c in plan['clusters'] if c.get('actions'))} clusters.",
        style="bold",
    )
    if not counts:
        summary = Text(
            "\nNo changes. Every targeted cluster matches its policies (or is skipped).",
            style="bold",
        )
    return Group(lines, summary)


class SweepProgress:
    """A rich progress bar on stderr (a terminal only); silent when output is piped."""

    def __init__(self, label: str = "sweeping", *, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: Any = None
        self._label = label
        self._states: Counter[str] = Counter()

    def __enter__(self) -> SweepProgress:
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[states]}"),
                TimeElapsedColumn(),
                transient=True,
                console=err,
                redirect_stdout=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=None, states="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def started(self, total: int | None) -> None:
        if self._progress is not None and total is not None:
            self._progress.update(self._task, total=total)

    def discovered(self, count: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=count)

    def advanced(self, judgement: Judgement) -> None:
        self.tick(judgement.verdict.state.value)

    def tick(self, label: str = "done") -> None:
        """One more item finished, counted under ``label``."""
        self._states[label] += 1
        if self._progress is not None:
            text = " ".join(f"{k}:{v}" for k, v in sorted(self._states.items()))
            self._progress.update(self._task, advance=1, states=text)

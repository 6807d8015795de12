"""``fleet report``: render recorded sweeps, compare two, show trends, list and prune history.

    fleet report [SWEEP|latest] --format json|csv|md|html|policyreport|junit|prometheus [--out FILE]
    fleet report diff [A] [B] [--format table|json|md]      (default: previous latest)
    fleet report trends [--last N] [--format table|json]
    fleet report list [--limit N] [--format table|json]
    fleet report prune [--days N] [--jobs]

This module composes the two edges that must not know each other: the history store
(``fleet.record.history``) loads, the report package (``fleet.report``) renders. Clusters
stream from the database into the renderer, so a 50,000-cluster report is never held whole.
Files are written to a temporary name and renamed: a reader (a Prometheus textfile collector,
a web server) never sees half a report.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO

import typer
from rich.console import Console
from rich.table import Table

from fleet.cli.app import app
from fleet.cli.common import DatabaseOpt, load_settings
from fleet.core.errors import NoSweeps
from fleet.jobs.reporting import render_recorded
from fleet.record.db import redacted
from fleet.record.history import History, open_history
from fleet.report.changes import diff
from fleet.report.common import STATE_SYMBOLS, STATES, Context, percent, short_time
from fleet.report.markdown import write_changes
from fleet.report.policyreport import APIS
from fleet.report.render import FORMATS
from fleet.report.trends import delta, series, sparkline
from fleet.settings import Settings

err = Console(stderr=True, highlight=False)


class _ReportGroup(typer.core.TyperGroup):
    """``fleet report X`` runs the ``show`` command unless X names another subcommand, so
    ``fleet report latest --format html`` and ``fleet report diff`` both work."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: Typer's vendored click
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    cls=_ReportGroup,
    help=(
        "Render recorded sweeps (json, csv, md, html, policyreport, junit, prometheus), compare "
        "two sweeps, show compliance trends. `fleet report` alone prints the latest sweep as JSON."
    ),
    no_args_is_help=False,
    rich_markup_mode="rich",
)
app.add_typer(report_app, name="report")

OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write to this file instead of stdout.", dir_okay=False)
]


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True)
    raise typer.Exit(code)


@contextmanager
def _history(database: str | None) -> Iterator[History]:
    settings = load_settings()
    url = database or settings.effective_database_url
    history = open_history(url, upgrade=settings.database_auto_upgrade)
    try:
        yield history  # NoSweeps (exit 1) and SweepNotFound (exit 2) are shown by fleet.cli.app
    finally:
        history.close()


@contextmanager
def _output(out: Path | None) -> Iterator[TextIO]:
    """stdout, or a temporary file next to ``out`` renamed into place on success."""
    if out is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    err.print(f"wrote {out}", soft_wrap=True, markup=False)


# Choices as Enums: Typer turns them into validated --help-documented choices.
class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    md = "md"
    html = "html"
    policyreport = "policyreport"
    junit = "junit"
    prometheus = "prometheus"


class PolicyReportApi(StrEnum):
    wgpolicyk8s = "wgpolicyk8s.io/v1alpha2"
    openreports = "openreports.io/v1alpha1"


# The renderers are the authority; the CLI's choices must not drift from them.
assert [f.value for f in ReportFormat] == list(FORMATS)
assert [a.value for a in PolicyReportApi] == list(APIS)


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    md = "md"


class TableFormat(StrEnum):
    table = "table"
    json = "json"


@report_app.command("show")
def show(
    sweep: Annotated[
        str, typer.Argument(help="latest, previous, latest~N, a sweep id or a unique prefix.")
    ] = "latest",
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ReportFormat.json,
    out: OutOpt = None,
    compare: Annotated[
        str | None,
        typer.Option(
            help="Sweep to compare with in md/html (default: the previous complete sweep)."
        ),
    ] = None,
    trend: Annotated[int, typer.Option(min=1, max=1000, help="Sweeps in the md/html trend.")] = 30,
    policyreport_api: Annotated[
        PolicyReportApi, typer.Option(help="PolicyReport API group/version.")
    ] = PolicyReportApi.wgpolicyk8s,
    policyreport_namespace: Annotated[
        str | None, typer.Option(help="Emit namespaced PolicyReports in this namespace.")
    ] = None,
    list_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="md: list every cluster that is not compliant (default: the worst 500, "
            "and how many more there are).",
        ),
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Render a recorded sweep ([bold]the default command[/]).

    Example: `fleet report latest -f html --out report.html`."""
    fmt_name = fmt.value
    api = policyreport_api.value
    with _history(database) as history:
        sweep_id = history.resolve(sweep)
        base = Context(
            policyreport_api=api,
            policyreport_namespace=policyreport_namespace,
            listed=None if list_all else Context.listed,
        )
        with _output(out) as stream:
            finished = render_recorded(
                history, sweep_id, fmt_name, stream, compare=compare, trend=trend, base=base
            )
        if not finished:
            err.print(
                f"[yellow]sweep {sweep_id} has not finished: its summary was computed from "
                "the clusters recorded so far[/]"
            )


@report_app.command("diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(help="The earlier sweep.")] = "previous",
    b: Annotated[str, typer.Argument(help="The later sweep.")] = "latest",
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f")] = DiffFormat.table,
    limit: Annotated[int, typer.Option(min=1, help="Rows per list in the table.")] = 50,
    out: OutOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """What changed between two sweeps: new findings, fixed, new and gone clusters, states."""
    with _history(database) as history:
        first, second = history.resolve(a), history.resolve(b)
        changes = diff(
            history.iter_clusters(first),
            history.iter_clusters(second),
            before_info=history.header(first)["sweep"],
            after_info=history.header(second)["sweep"],
        )
    with _output(out) as stream:
        if fmt is DiffFormat.json:
            json.dump(changes, stream, indent=2, ensure_ascii=False)
            stream.write("\n")
        elif fmt is DiffFormat.md:
            write_changes(stream, changes)
        else:
            _changes_table(
                changes, Console(file=stream, highlight=False, width=200 if out else None), limit
            )


def _changes_table(changes: dict[str, Any], console: Console, limit: int) -> None:
    counts = changes["counts"]
    console.print(
        f"[bold]{changes['from']['id']}[/] ({short_time(changes['from']['finishedAt'])}) → "
        f"[bold]{changes['to']['id']}[/] ({short_time(changes['to']['finishedAt'])}): "
        f"{counts['newDrift']} new findings, {counts['fixed']} fixed, {counts['newClusters']} new "
        f"clusters, {counts['goneClusters']} gone, {counts['worse']} worse, "
        f"{counts['better']} better"
    )
    for note in changes["notes"]:
        console.print(f"[yellow]note:[/] {note['message']}", markup=True, highlight=False)
    for key, title in (("newDrift", "New findings"), ("fixed", "Fixed")):
        if changes[key]:
            table = Table(title=f"{title} ({counts[key]})", title_justify="left")
            for col in ("Cluster", "Finding", "Policy", "Path", "Desired", "Actual"):
                table.add_column(col, overflow="fold")
            for i in changes[key][:limit]:
                has = i.get("path") is not None
                table.add_row(
                    i["name"],
                    i["code"],
                    i.get("policy") or "—",
                    i.get("path") or "",
                    json.dumps(i.get("desired")) if has else "",
                    json.dumps(i.get("actual")) if has else "",
                )
            console.print(table)
    for key, title in (("newClusters", "New clusters"), ("goneClusters", "Gone clusters")):
        if changes[key]:
            table = Table(title=f"{title} ({counts[key]})", title_justify="left")
            table.add_column("Cluster")
            table.add_column("State")
            table.add_column("Id", overflow="fold")
            for i in changes[key][:limit]:
                table.add_row(i["name"], _state(i["state"]), i["id"])
            console.print(table)
    if changes["stateChanges"]:
        table = Table(title=f"State changes ({counts['stateChanges']})", title_justify="left")
        for col in ("Cluster", "Was", "Now", "Direction"):
            table.add_column(col)
        for i in changes["stateChanges"][:limit]:
            table.add_row(i["name"], _state(i["from"]), _state(i["to"]), i["direction"])
        console.print(table)
    if any(
        counts[k] > limit
        for k in ("newDrift", "fixed", "newClusters", "goneClusters", "stateChanges")
    ):
        console.print(f"(lists cut at {limit} rows: --limit or --format json for all)")


def _state(state: str) -> str:
    return f"{STATE_SYMBOLS.get(state, '')} {state}"


@report_app.command("trends")
def trends_cmd(
    last: Annotated[
        int, typer.Option("--last", "-n", min=1, max=1000, help="How many sweeps.")
    ] = 30,
    fmt: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.table,
    include_incomplete: Annotated[
        bool, typer.Option(help="Also count sweeps that stopped early.")
    ] = False,
    out: OutOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Compliance over the last N sweeps, overall, per policy and per subscription."""
    with _history(database) as history:
        points = history.trends(last, complete_only=not include_incomplete)
        if not points:
            raise NoSweeps(f"no finished sweep in {redacted(history.url)}: run `fleet sweep` first")
    data = series(points)
    with _output(out) as stream:
        if fmt is TableFormat.json:
            json.dump(data, stream, indent=2, ensure_ascii=False)
            stream.write("\n")
            return
        console = Console(file=stream, highlight=False, width=200 if out else None)
        table = Table(title=f"Compliance over the last {len(points)} sweeps", title_justify="left")
        for col in (
            "Finished",
            "Sweep",
            "Clusters",
            "Compliance",
            *[_state(s) for s in reversed(STATES)],
        ):
            table.add_column(
                col,
                justify="right" if col not in ("Finished", "Sweep") else "left",
                no_wrap=col == "Sweep",  # ids are what users copy into the next command
            )
        for p in data["sweeps"]:
            by_state = p["byState"]
            table.add_row(
                short_time(p["finishedAt"]),
                p["id"],
                str(p["clusters"]),
                percent(p["compliancePercent"]),
                *[str(by_state.get(s, 0)) for s in reversed(STATES)],
            )
        console.print(table)
        for key, title in (("policies", "Policy"), ("subscriptions", "Subscription")):
            table = Table(title=f"Per {title.lower()}", title_justify="left")
            table.add_column(title)
            table.add_column("Trend")
            table.add_column("Now", justify="right")
            table.add_column("Change", justify="right")
            for name, values in data[key].items():
                change = delta(values)
                table.add_row(
                    name,
                    sparkline(values),
                    percent(values[-1] if values else None),
                    "" if change is None else f"{change:+.1f}",
                )
            console.print(table)


@report_app.command("list")
def list_cmd(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many sweeps.")] = 20,
    fmt: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.table,
    database: DatabaseOpt = None,
) -> None:
    """Recorded sweeps, newest first."""
    with _history(database) as history:
        rows = history.sweeps(limit)
        if not rows:
            raise NoSweeps(
                f"no sweeps recorded in {redacted(history.url)}: run `fleet sweep` first"
            )
    if fmt is TableFormat.json:
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    table = Table(title="Recorded sweeps", title_justify="left")
    for col in ("Sweep", "Finished", "Clusters", "Compliance", "Revision", "Engine", "Complete"):
        table.add_column(col, no_wrap=col == "Sweep")
    for row in rows:
        info, summary = row["sweep"], row["summary"] or {}
        table.add_row(
            info.get("id", ""),
            short_time(info.get("finishedAt")) or "running",
            str(summary.get("clusters", "")),
            percent(summary.get("compliancePercent")),
            str(info.get("policyRevision", ""))[:12],
            str(info.get("engine", "")),
            "yes" if info.get("complete", True) and row["summary"] is not None else "no",
        )
    Console(highlight=False).print(table)


@report_app.command("prune")
def prune_cmd(
    days: Annotated[
        int | None, typer.Option(min=1, help="Keep this many days (default FLEET_RETENTION_DAYS).")
    ] = None,
    jobs: Annotated[
        bool, typer.Option(help="Also delete finished jobs and their ARM write records.")
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Delete sweeps older than the retention period (with their verdicts and findings)."""
    keep = days if days is not None else Settings().retention_days
    with _history(database) as history:
        gone = history.prune(keep, jobs=jobs)
    err.print(f"deleted {gone} sweep(s) older than {keep} days", soft_wrap=True)

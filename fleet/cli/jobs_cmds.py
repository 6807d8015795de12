"""``fleet jobs``: remediation jobs in the history database (list, show, approve, cancel, audit),
and the installation's kill switch (``fleet jobs kill-switch on|off|status``).

The history database is the record of every job this installation ran, so these commands work
from any terminal while a job runs elsewhere: ``approve`` lets a job waiting at a wave's
approval gate go on, ``cancel`` asks it to stop (it checks between clusters and waves), and
``show``/``audit`` print the audit trail of its ARM writes: who, what (resource, action, body
digest without secrets), when, ARM's correlation id, the operation's continuation token, and
the outcome with ARM's error code and message.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from fleet.cli.app import app
from fleet.cli.common import (
    VerboseOpt,
    err,
    fail,
    load_settings,
    setup_logging,
    to_json,
    write_output,
)
from fleet.cli.server_client import ServerOpt, TokenOpt, api_call
from fleet.core.duties import Actor
from fleet.jobs import operators
from fleet.record.history import History, open_history

jobs_app = typer.Typer(
    help="Remediation jobs: list, show, approve a waiting wave, cancel, audit trail.",
    no_args_is_help=True,
)
app.add_typer(jobs_app, name="jobs")

OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write to this file instead.")]
JobArg = Annotated[str, typer.Argument(help="Job id, a unique prefix of it, or 'latest'.")]

_STATUS_STYLE = {
    "fixed": "green",
    "succeeded": "green",
    "completed": "yellow",
    "failed": "bold red",
    "stopped": "bold red",
    "cancelled": "yellow",
    "skipped": "cyan",
    "retry": "yellow",
    "not-started": "dim",
    "awaiting-approval": "bold magenta",
    "running": "bold",
    "pending": "dim",
    "applied": "yellow",
    "timeout": "red",
    "started": "yellow",
}


def _styled(value: str | None) -> Text:
    return Text(value or "", style=_STATUS_STYLE.get(value or "", ""))


def _job_title(job: dict[str, Any], detail: str) -> Text:
    """``Job <id>  <status>  <detail>``: the first line of every view of a job."""
    return Text.assemble(
        ("Job ", "bold"), (job["id"], "bold cyan"), "  ", _styled(job["status"]), f"  {detail}"
    )


def _open(verbose: int = 0) -> History:
    setup_logging(verbose)
    settings = load_settings()
    return open_history(settings)


def _find(history: History, ref: str) -> dict[str, Any]:
    job = history.get_job(history.find_job(ref))
    assert job is not None
    return job


def _short(resource_id: str | None) -> str:
    if not resource_id:
        return ""
    parts = resource_id.split("/providers/")
    cluster = parts[1].rsplit("/", 1)[-1] if len(parts) > 1 else resource_id
    child = parts[2] if len(parts) > 2 else ""
    return f"{cluster}/{child.split('/', 1)[-1]}" if child else cluster


def console() -> Console:
    """stdout; wide when it is not a terminal, so ids and reasons in pipes are not cut."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _emit(renderable: RenderableType, out: Path | None) -> None:
    if out is None:
        console().print(renderable)
        return
    import io

    buf = io.StringIO()
    Console(file=buf, width=160, force_terminal=False, highlight=False).print(renderable)
    write_output(buf.getvalue(), out)


# --- rendering (pure: data in, renderable out) ------------------------------------------------


def format_job_report(report: dict[str, Any], *, limit: int = 20) -> RenderableType:
    """The end-of-job summary: counts, waves, failures with ARM's reasons, skips, retries."""
    job, summary = report["job"], report["summary"]
    parts: list[RenderableType] = [_job_title(job, f"mode {job['mode']}")]
    if job.get("stopReason"):
        parts.append(Text(f"stopped: {job['stopReason']}", style="bold red"))
    rollout = job.get("rollout") or {}
    parts.append(
        Text(
            f"rollout of {rollout.get('policy') or '(default)'}: failure budget "
            f"{rollout.get('failureBudget')}, maxConcurrency {rollout.get('maxConcurrency')}, "
            f"soak {rollout.get('soakSeconds')}s",
            style="dim",
        )
    )
    counts = Table(title="Clusters", title_justify="left", show_edge=False)
    columns = ("fixed", "failed", "skipped", "retry", "deferred", "notStarted", "compliant")
    for name in (*columns, "writes"):
        counts.add_column(name, justify="right")
    counts.add_row(*(str(summary.get(n, 0)) for n in (*columns, "writes")))
    parts.append(counts)
    if report.get("waves"):
        waves = Table(title="Waves", title_justify="left", show_edge=False)
        statuses = ("fixed", "failed", "skipped", "retry", "deferred", "not-started")
        for column in ("wave", "clusters", *statuses):
            waves.add_column(column, justify="left" if column == "wave" else "right")
        for w in report["waves"]:
            name = w["name"] + (" (approval)" if w.get("approval") else "")
            waves.add_row(name, str(w["clusters"]), *(str(w.get(k, 0)) for k in statuses))
        parts.append(waves)
    by_status: dict[str, list[dict[str, Any]]] = {}
    for c in report["clusters"]:
        by_status.setdefault(c["status"], []).append(c)
    for status, title in (
        ("failed", "Failed"),
        ("retry", "Left for retry (not written)"),
        ("skipped", "Skipped"),
        ("deferred", "Deferred (outside their window, or the next automatic run)"),
        ("not-started", "Not started"),
    ):
        items = by_status.get(status) or []
        if not items:
            continue
        table = Table(title=f"{title} ({len(items)})", title_justify="left", show_edge=False)
        table.add_column("cluster")
        table.add_column("why")
        table.add_column("reason", overflow="fold")
        for c in items[:limit]:
            reason = c.get("reason") or ""
            if c.get("nextWindow") and "next window" not in reason:
                reason += f" (next window {c['nextWindow']})"
            table.add_row(c["name"], c.get("category") or "", reason)
        if len(items) > limit:
            table.add_row(f"... {len(items) - limit} more", "", "")
        parts.append(table)
    if report.get("retry"):
        parts.append(
            Text(
                f"{len(report['retry'])} cluster(s) left for retry: fleet remediate --retry "
                f"{job['id']}",
                style="yellow",
            )
        )
    return Group(*parts)


def format_writes(writes: list[dict[str, Any]], *, limit: int = 200) -> RenderableType:
    table = Table(title=f"ARM writes ({len(writes)})", title_justify="left", show_edge=False)
    for column in (
        "started",
        "by",
        "action",
        "resource",
        "outcome",
        "error",
        "correlation id",
        "body digest",
    ):
        table.add_column(column, overflow="fold")
    for w in writes[:limit]:
        error = f"{w['errorCode']}: {w['errorMessage']}" if w.get("errorCode") else ""
        table.add_row(
            (w.get("startedAt") or "")[:19],
            w.get("principal") or "",
            w["action"],
            _short(w["resourceId"]),
            _styled(w["outcome"]),
            error,
            w.get("correlationId") or "",
            (w.get("bodyDigest") or "")[:19],
        )
    return table


def format_jobs(jobs: list[dict[str, Any]]) -> RenderableType:
    table = Table(title="Jobs", title_justify="left", show_edge=False)
    for column in (
        "id",
        "kind",
        "status",
        "created",
        "principal",
        "fixed",
        "failed",
        "skipped",
        "retry",
        "waiting for",
    ):
        table.add_column(column)
    for job in jobs:
        c = job.get("counters") or {}
        progress = (job.get("summary") or {}).get("progress") or {}
        waiting = progress.get("waitingFor") if job["status"] == "awaiting-approval" else ""
        table.add_row(
            job["id"],
            job["kind"],
            _styled(job["status"]),
            (job.get("createdAt") or "")[:19],
            job.get("principal") or "",
            str(c.get("fixed", "")),
            str(c.get("failed", "")),
            str(c.get("skipped", "")),
            str(c.get("retry", "")),
            waiting or "",
        )
    return table


# --- commands -------------------------------------------------------------------------------


@jobs_app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    status: Annotated[str | None, typer.Option(help="Only jobs in this status.")] = None,
    output: OutputOpt = "table",
    verbose: VerboseOpt = 0,
) -> None:
    """Recorded jobs, newest first."""
    with _open(verbose) as history:
        jobs = history.jobs(limit, status=status)
    if output == "json":
        write_output(to_json(jobs), None)
    else:
        _emit(format_jobs(jobs), None)


@jobs_app.command("show")
def show(
    job: JobArg = "latest",
    output: OutputOpt = "table",
    out: OutOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """A job: its status, waves, every cluster's outcome, and the audit trail of its writes."""
    with _open(verbose) as history:
        record = _find(history, job)
        clusters = history.job_clusters(record["id"])
        writes = history.writes(record["id"])
    if output == "json":
        for c in clusters:
            c.pop("facts", None)  # the cluster id says which; facts are for retries
        write_output(to_json({"job": record, "clusters": clusters, "writes": writes}), out)
        return
    summary = record.get("summary") or {}
    parts: list[RenderableType] = []
    if "job" in summary:  # finished: the summary, with the clusters from job_clusters
        listed = [
            {
                "id": c["clusterId"],
                "name": c["name"],
                "status": c["status"],
                "category": (c.get("outcome") or {}).get("category"),
                "reason": c.get("reason"),
            }
            for c in clusters
        ]
        retry = [c["id"] for c in listed if c["status"] in ("failed", "retry", "not-started")]
        parts.append(format_job_report({**summary, "clusters": listed, "retry": retry}))
    else:
        progress = summary.get("progress") or {}
        parts.append(_job_title(record, f"wave {progress.get('wave') or '-'}"))
        if record["status"] == "awaiting-approval":
            parts.append(
                Text(
                    f"waiting for approval of wave {progress.get('waitingFor')}: "
                    f"fleet jobs approve {record['id']}",
                    style="bold magenta",
                )
            )
        counts = record.get("counters") or {}
        parts.append(Text("  ".join(f"{k} {v}" for k, v in counts.items()), style="dim"))
    parts.append(format_writes(writes))
    _emit(Group(*parts), out)


@jobs_app.command("approve")
def approve(
    job: JobArg,
    wave: Annotated[
        str | None,
        typer.Option(
            help="The wave to approve (default: the wave the job waits for; a named "
            "wave may be approved ahead)."
        ),
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Let a job waiting at a wave's approval gate go on.

    With --server (or FLEET_SERVER) the approval goes through the API under the identity of
    the token in FLEET_API_TOKEN, so the service's rules apply (roles, the creator never
    approves); without it the history database is written directly, as the local user.
    """
    if server is not None:
        answer = api_call(server, token, f"jobs/{job}/approve", {"wave": wave} if wave else {})
        state = answer.get("approval") or {}
        err.print(
            f"approved wave {state.get('wave')} of job {state.get('job')} "
            f"({state.get('approvals')} of {state.get('required')} approval(s))"
        )
        return
    with _open(verbose) as history:
        found = operators.approve(history, job, Actor.local(), wave)
    more = "" if found.complete else f" ({len(found.approvers)} of {found.required} approvals)"
    err.print(f"approved wave {found.wave} of job {found.job}{more}")


@jobs_app.command("cancel")
def cancel(
    job: JobArg, server: ServerOpt = None, token: TokenOpt = None, verbose: VerboseOpt = 0
) -> None:
    """Ask a running job to stop: in-flight clusters finish, nothing new is written."""
    if server is not None:
        api_call(server, token, f"jobs/{job}/cancel", {})
        err.print(f"cancel requested for job {job}; it stops between clusters")
        return
    with _open(verbose) as history:
        record = operators.cancel(history, job, Actor.local())
    err.print(f"cancel requested for job {record['id']}; it stops between clusters")


@jobs_app.command("audit")
def audit(
    job: Annotated[str | None, typer.Option("--job", help="Only this job's writes.")] = None,
    cluster: Annotated[
        str | None, typer.Option("--cluster", help="Only writes to this cluster (its ARM id).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many writes.")] = 1000,
    output: OutputOpt = "table",
    out: OutOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """The audit trail of ARM writes: who, what, when, correlation id, outcome."""
    with _open(verbose) as history:
        job_id = _find(history, job)["id"] if job else None
        writes = history.writes(job_id, cluster, limit=limit)
    if output == "json":
        write_output(to_json(writes), out)
    else:
        _emit(format_writes(writes, limit=limit), out)


# --- the kill switch ----------------------------------------------------------------------------

kill_switch_app = typer.Typer(
    help="The kill switch: stop every running job at its next step and refuse new ones.",
    no_args_is_help=True,
)
jobs_app.add_typer(kill_switch_app, name="kill-switch")


def refuse_if_killed(history: History, redis_url: str | None = None) -> None:
    """Exit 2 with the reason when the kill switch is on (a job must not start)."""
    from fleet.jobs import killswitch

    found = killswitch.read(history, redis_url)
    if found.engaged:
        fail(f"{found.describe()}; no job starts until `fleet jobs kill-switch off`")


def refuse_if_killed_anywhere() -> None:
    """``refuse_if_killed`` on the settings' history database and Redis (distributed jobs)."""
    settings = load_settings()
    history = open_history(settings)
    with history:
        refuse_if_killed(history, settings.redis_url)


@kill_switch_app.command("on")
def kill_switch_on(
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (shown to everyone refused).")
    ] = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Engage the kill switch: every running job stops at its next step.

    In-flight clusters finish (and are verified); sweeps, plans and remediations refuse to
    start; Celery workers take no new cluster. Stored in the history database and mirrored to
    Redis when FLEET_REDIS_URL is set and answers.
    """
    from fleet.jobs import killswitch

    settings = load_settings()
    with _open(verbose) as history:
        where = killswitch.engage(history, killswitch.mirror_url(settings), reason=reason)
    err.print(
        f"[bold red]kill switch ON[/] (set in {', '.join(where)}): running jobs stop at "
        "their next step; no new job starts. `fleet jobs kill-switch off` releases it."
    )


@kill_switch_app.command("off")
def kill_switch_off(verbose: VerboseOpt = 0) -> None:
    """Release the kill switch: jobs may start again.

    Jobs it stopped stay stopped: `fleet remediate --retry JOB` picks up their clusters.
    """
    from fleet.jobs import killswitch

    settings = load_settings()
    with _open(verbose) as history:
        where = killswitch.release(history, killswitch.mirror_url(settings))
    err.print(f"kill switch off (cleared in {', '.join(where)})")


@kill_switch_app.command("status")
def kill_switch_status(output: OutputOpt = "table", verbose: VerboseOpt = 0) -> None:
    """Whether the kill switch is on, since when, by whom and why."""
    from fleet.jobs import killswitch

    settings = load_settings()
    with _open(verbose) as history:
        found = killswitch.read(history, killswitch.mirror_url(settings))
    if output == "json":
        write_output(to_json(found.to_json()), None)
        return
    style = "bold red" if found.engaged else "green"
    where = f" (in {', '.join(found.sources)})" if found.sources else ""
    console().print(Text(found.describe() + where, style=style))

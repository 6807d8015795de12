"""``--engine celery``: submit a job to the workers, follow it with a progress bar, print the
same report as the local engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from fleet.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    err,
    fail,
    history_errors,
    load_policies,
    load_settings,
    setup_logging,
)
from fleet.jobs.distributed import JobFailed, client, follow, submit_sweep, sweep_report
from fleet.record.jobstate import JobState


def _jobs(url: str) -> JobState:
    jobs = JobState(url)
    try:
        jobs.ping()
    except Exception as exc:
        fail(
            f"Redis at FLEET_REDIS_URL is not reachable ({exc}); start it or use --engine local", 3
        )
    return jobs


class _Bar:
    """Progress of a distributed job: a bar on a terminal, nothing when piped."""

    def __init__(self, label: str) -> None:
        self.progress: Progress | None = None
        if err.is_terminal:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn(f"[bold]{label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[extra]}"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self.task = self.progress.add_task(label, total=None, extra="")

    def __enter__(self) -> _Bar:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()

    def update(self, counts: dict[str, int]) -> None:
        if not self.progress:
            return
        total = counts.get("total", -1)
        states = " ".join(
            f"{k[6:]}:{v}" for k, v in sorted(counts.items()) if k.startswith("state:")
        )
        self.progress.update(
            self.task,
            completed=counts.get("done", 0),
            total=total if total >= 0 else None,
            extra=states,
        )


def celery_sweep(policies: list[Path], *, verbose: int) -> dict[str, Any]:
    """Submit a sweep to the workers and return its report when it ends."""
    setup_logging(verbose)
    settings = load_settings()
    policy_set = load_policies(policies)
    jobs = _jobs(settings.redis_url)
    job_id = submit_sweep(settings, policy_set, jobs=jobs)
    err.print(
        f"submitted sweep job [bold]{job_id}[/] (follow it from anywhere: fleet jobs show {job_id})"
    )
    try:
        with _Bar("sweeping (celery)") as bar:
            meta = follow(
                jobs,
                job_id,
                on_progress=bar.update,
                stall_seconds=settings.stall_seconds,
                app=client(settings),
            )
    except KeyboardInterrupt:
        jobs.cancel(job_id)
        err.print(f"[yellow]cancelled {job_id}: workers stop taking its clusters within seconds[/]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except JobFailed as exc:
        fail(str(exc), EXIT_FAILED)
    if meta.get("status") != "complete":
        err.print(
            f"[yellow]job {job_id} ended {meta.get('status')}: the report holds what was judged[/]"
        )
    return sweep_report(jobs, job_id, meta)


def celery_remediate(
    policies: list[Path],
    *,
    policy: str | None,
    plan_file: Path | None,
    retry: str | None,
    yes: bool,
    output: str,
    out: Path | None,
    max_clusters: int | None,
    approval_timeout: float,
    operation_timeout: float,
    verbose: int,
) -> None:
    """Submit a remediation job to the workers, follow it, print the same summary as the local
    engine. The job is planned on a worker, so it starts writing without a prompt: ``--yes``
    is required (``--dry-run`` shows the plan first)."""
    import json

    from fleet.cli.common import to_json, write_output
    from fleet.cli.jobs_cmds import console, format_job_report
    from fleet.jobs.distributed import submit_remediation
    from fleet.record.history import open_history

    setup_logging(verbose)
    settings = load_settings()
    if not yes:
        fail(
            "a distributed remediation is planned on the workers and writes right away: pass "
            "--yes (see the plan first with --dry-run)"
        )
    if not policies:
        fail("pass --policies with --engine celery (also for --retry)")
    policy_set = load_policies(policies)
    document = None
    if plan_file is not None:
        try:
            document = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"cannot read the plan {plan_file}: {exc}")
    mode = "plan" if document is not None else "retry" if retry else "live"
    jobs = _jobs(settings.redis_url)
    job_id = submit_remediation(
        settings,
        policy_set,
        jobs=jobs,
        mode=mode,
        plan_document=document,
        plan_file=str(plan_file) if plan_file else None,
        retry_of=retry,
        policy=policy,
        max_clusters=max_clusters,
        approval_timeout=approval_timeout,
        operation_timeout=operation_timeout,
        policy_paths=[str(p.resolve()) for p in policies],
    )
    err.print(
        f"submitted remediation job [bold]{job_id}[/] "
        f"(fleet jobs show {job_id}; fleet jobs cancel {job_id})"
    )
    try:
        with _Bar("remediating (celery)") as bar:

            def progress(counts: dict[str, int]) -> None:
                meta = jobs.meta(job_id)
                bar.update({"done": counts.get("done", 0), "total": int(meta.get("toWrite") or -1)})

            meta = follow(
                jobs,
                job_id,
                on_progress=progress,
                stall_seconds=settings.stall_seconds,
                app=client(settings),
            )
    except KeyboardInterrupt:
        jobs.cancel(job_id)
        err.print(
            f"[yellow]cancel requested for {job_id}: in-flight clusters finish, "
            "nothing new is written[/]"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except JobFailed as exc:
        fail(str(exc), EXIT_FAILED)
    if meta.get("status") == "failed":
        for name in meta.get("changed") or []:
            err.print(f"  changed: {name}", markup=False)
        fail(str(meta.get("error") or "the job could not be prepared"))
    with history_errors(settings.effective_database_url):
        history = open_history(settings)
    with history:
        rows = history.job_clusters(job_id)
    summary = dict(meta.get("summary") or {})
    listed = [
        {
            "id": c["clusterId"],
            "name": c["name"],
            "wave": c.get("wave"),
            "status": c["status"],
            "category": (c.get("outcome") or {}).get("category"),
            "reason": c.get("reason"),
        }
        for c in rows
    ]
    report = {
        **summary,
        "clusters": listed,
        "retry": sorted(meta.get("retry") or [], key=str.lower),
    }
    if output == "json":
        write_output(to_json(report), out)
    else:
        console().print(format_job_report(report))
    status = meta.get("jobStatus")
    if status == "stopped":
        raise typer.Exit(EXIT_FAILED)
    if status == "cancelled":
        raise typer.Exit(EXIT_INTERRUPTED)

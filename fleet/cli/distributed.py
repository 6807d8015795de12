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

from fleet.apply.spec import JobRequest
from fleet.cli.common import err, fail, load_policies, load_settings, setup_logging
from fleet.core.errors import EXIT_INTERRUPTED
from fleet.jobs.distributed import client, follow, submit_sweep, sweep_report
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
    if meta.get("status") != "complete":
        err.print(
            f"[yellow]job {job_id} ended {meta.get('status')}: the report holds what was judged[/]"
        )
    return sweep_report(jobs, job_id, meta)


def celery_remediate(
    policies: list[Path],
    request: JobRequest,
    *,
    yes: bool,
    output: str,
    out: Path | None,
    verbose: int,
) -> None:
    """Submit a remediation job to the workers, follow it, print the same summary as the local
    engine. The job is planned on a worker, so it starts writing without a prompt: ``--yes``
    is required (``--dry-run`` shows the plan first)."""
    from fleet.apply.lifecycle import JobStatus, exit_code
    from fleet.cli.common import to_json, write_output
    from fleet.cli.jobs_cmds import console, format_job_report
    from fleet.jobs.distributed import submit_remediation
    from fleet.jobs.job_report import recorded_report
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
    jobs = _jobs(settings.redis_url)
    job_id = submit_remediation(settings, policy_set, request, jobs=jobs)
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
    if meta.get("status") == "failed":
        for name in meta.get("changed") or []:
            err.print(f"  changed: {name}", markup=False)
        fail(str(meta.get("error") or "the job could not be prepared"))
    history = open_history(settings)
    with history:
        report = recorded_report(history, job_id)
    if output == "json":
        write_output(to_json(report), out)
    else:
        console().print(format_job_report(report))
    code = exit_code(JobStatus(meta.get("jobStatus") or "completed"))
    if code:
        raise typer.Exit(code)

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
    load_policies,
    load_settings,
    setup_logging,
)
from fleet.jobs.distributed import JobFailed, client, follow, submit_sweep, sweep_report
from fleet.store.jobstate import JobState


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

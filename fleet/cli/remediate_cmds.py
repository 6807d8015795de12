"""``fleet remediate``: fix the fleet in waves, within a failure budget, with an audit trail.

Three ways to say what to write: the fresh plan of every targeted cluster (the default), a saved
plan (``--plan plan.json``, refused when anything changed since), or an earlier job's retry
list (``--retry JOB``); they become one ``JobRequest``, prepared the same way on either engine.
``--dry-run`` prints the job (plan and waves) and writes nothing; ``--out`` with it saves that
plan for ``--plan``. Without ``--yes`` the command asks on a terminal and refuses when there is
none. ``--resume JOB`` continues a local job whose process died. Exit codes
(``fleet.apply.lifecycle.exit_code``): 0 done (also when clusters were skipped or left for
retry), 1 the failure budget stopped the job or an approval timed out, 2 bad input, a stale
plan or a safety rail, 3 Azure unreachable, 130 cancelled (also by the kill switch).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from fleet.apply.outcomes import ClusterOutcome
from fleet.apply.spec import JobRequest, JobSpec, Mode
from fleet.apply.steps import record_job
from fleet.apply.waves import WavePlan
from fleet.cli.app import app
from fleet.cli.common import (
    VerboseOpt,
    err,
    fail,
    load_policies,
    load_settings,
    setup_logging,
    to_json,
    write_output,
)
from fleet.cli.jobs_cmds import (
    console,
    format_job_report,
    refuse_if_killed,
    refuse_if_killed_anywhere,
)
from fleet.cli.views import SweepProgress, format_plan
from fleet.core.duties import Actor
from fleet.core.errors import EXIT_INTERRUPTED, KillSwitchEngaged
from fleet.jobs.job_report import recorded_report
from fleet.jobs.local import check_resumable, run_remediation
from fleet.jobs.local import resume as resume_job
from fleet.jobs.preparing import load_spec, make_edges, plan_document, prepare
from fleet.jobs.runs import environment
from fleet.policy.loading import PolicySet
from fleet.record.history import History


class JobDisplay:
    """Live progress per wave on stderr: a bar per wave (a terminal only; silent in pipes)."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._seen: set[str] = set()

    def __enter__(self) -> JobDisplay:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.fields[wave]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[phase]}"),
                TextColumn("{task.fields[tally]}"),
                console=err,
                redirect_stdout=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _task(self, wave: WavePlan) -> TaskID | None:
        if self._progress is None:
            return None
        if wave.name not in self._tasks:
            self._tasks[wave.name] = self._progress.add_task(
                wave.name, total=len(wave.clusters), wave=wave.name, phase="", tally=""
            )
        return self._tasks[wave.name]

    def wave_started(self, wave: WavePlan, total: int) -> None:
        self._task(wave)

    def phase(self, wave: WavePlan, text: str) -> None:
        task = self._task(wave)
        if self._progress is not None and task is not None:
            self._progress.update(task, phase=text)

    def cluster_done(self, outcome: ClusterOutcome) -> None:
        # Counted once, when written (or skipped); its verification later does not count again.
        if self._progress is None or outcome.wave not in self._tasks:
            return
        seen = outcome.cluster_id.lower()
        if seen in self._seen:
            return
        self._seen.add(seen)
        self._progress.advance(self._tasks[outcome.wave])

    def wave_finished(self, wave: WavePlan, counts: Mapping[str, int]) -> None:
        task = self._task(wave)
        if self._progress is not None and task is not None:
            tally = " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))
            self._progress.update(task, completed=len(wave.clusters), phase="done", tally=tally)


def format_preview(spec: JobSpec) -> RenderableType:
    """What the job is about to do: counts, the rollout and its waves."""
    rollout = spec.choice.rollout
    writes = sum(len(t.actions) for t in spec.tasks.values())
    parts: list[RenderableType] = [
        Text.assemble(
            ("Remediation ", "bold"),
            (spec.id, "bold cyan"),
            f"  {len(spec.tasks)} cluster(s) to write ({writes} write(s)), "
            f"{len(spec.outcomes)} left alone, {spec.compliant} compliant",
        ),
        Text(
            f"rollout of {spec.choice.policy or '(default)'} ({spec.choice.why}): failure "
            f"budget {rollout.failure_budget}, maxConcurrency {rollout.max_concurrency}, "
            f"soak {rollout.soak_seconds}s",
            style="dim",
        ),
    ]
    if spec.waves:
        table = Table(show_edge=False)
        table.add_column("wave")
        table.add_column("clusters", justify="right")
        table.add_column("approval")
        for w in spec.waves:
            table.add_row(
                w.name + (" (implicit)" if w.implicit else ""),
                str(len(w.clusters)),
                "yes" if w.approval else "",
            )
        parts.append(table)
    return Group(*parts)


def _policies_of_job(history: History, ref: str) -> list[Path]:
    job = history.get_job(history.find_job(ref))
    assert job is not None
    paths = [Path(p) for p in (job.get("options") or {}).get("policies") or []]
    if not paths:
        fail(f"job {job['id']} recorded no policy paths: pass --policies")
    return paths


def _confirm(spec: JobSpec, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        fail(
            "refusing to write without --yes: stdin is not a terminal to confirm on "
            "(use --dry-run to see the plan)"
        )
    if not typer.confirm(f"Write {len(spec.tasks)} cluster(s)?", default=False, err=True):
        err.print("nothing was written")
        raise typer.Exit(0)


@app.command()
def remediate(
    policies: Annotated[
        list[Path],
        typer.Option(
            "--policies", "-p", help="Policy files or directories (repeatable).", show_default=False
        ),
    ] = [],  # noqa: B006 (typer reads the default; never mutated)
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="Only this policy's resources (and its rollout)."),
    ] = None,
    plan_file: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Apply exactly this saved plan (fleet plan --out); refused "
            "when a cluster changed since.",
        ),
    ] = None,
    retry: Annotated[
        str | None,
        typer.Option(
            "--retry",
            help="Re-apply a job's desired state to the clusters it "
            "failed, skipped for retry or did not reach.",
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Continue a local job whose process died: poll the writes it left running, "
            "then finish its waves.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="With --resume: even when the job looks alive."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the job; write nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the result (with --dry-run: the plan) to this file."),
    ] = None,
    max_clusters: Annotated[
        int | None,
        typer.Option(
            "--max-clusters",
            min=1,
            help="Allow writing up to N clusters (default FLEET_MAX_CLUSTERS).",
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="local (this machine) or celery (workers).")
    ] = "local",
    approval_timeout: Annotated[
        float,
        typer.Option(
            "--approval-timeout", min=0, help="Seconds a wave waits for `fleet jobs approve`."
        ),
    ] = 3600.0,
    operation_timeout: Annotated[
        float,
        typer.Option(
            "--operation-timeout",
            min=1,
            help="Seconds to poll one ARM operation before giving up on it.",
        ),
    ] = 1800.0,
    verbose: VerboseOpt = 0,
) -> None:
    """Fix what the policies enforce, wave by wave, within the failure budget.

    Only ``enforce`` policies write. Each cluster is read again right before it is written;
    offline or stopped clusters are skipped and listed for retry. A wave ends by reading its
    clusters again: a cluster is fixed only when ARM shows what was written.
    """
    setup_logging(verbose)
    if output not in ("table", "json"):
        fail(f"unknown output {output!r}: use table or json")
    if engine not in ("local", "celery"):
        fail(f"unknown engine {engine!r}: use local or celery")
    if sum(x is not None for x in (plan_file, retry, resume)) > 1:
        fail("--plan, --retry and --resume do not go together")
    if resume is not None:
        if engine != "local" or dry_run:
            fail("--resume continues a local job (a Celery job is resumed by its workers)")
        _resume(
            resume,
            policies,
            force=force,
            output=output,
            out=out,
            approval_timeout=approval_timeout,
            operation_timeout=operation_timeout,
        )
        return
    paths = tuple(str(p.resolve()) for p in policies)
    document: dict[str, Any] | None = None
    if plan_file is not None:
        try:
            document = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"cannot read the plan {plan_file}: {exc}")
    request = JobRequest(
        mode=Mode.PLAN if document is not None else Mode.RETRY if retry else Mode.LIVE,
        plan_document=document,
        plan_file=str(plan_file) if plan_file else None,
        retry_of=retry,
        policy=policy,
        max_clusters=max_clusters,
        approval_timeout=approval_timeout,
        operation_timeout=operation_timeout,
        policy_paths=paths,
        requested_by=Actor.local(),
    )
    if engine == "celery" and not dry_run:  # a dry run only reads: it runs here
        refuse_if_killed_anywhere()
        _celery(policies, request, yes=yes, output=output, out=out, verbose=verbose)
        return
    settings = load_settings()
    policy_set: PolicySet | None = load_policies(policies) if policies else None
    if policy_set is None and retry is None:
        fail("no policies given: pass --policies PATH (a file or a directory)")
    cancel = threading.Event()
    with environment(settings) as env:
        edges = make_edges(env, operation_timeout=operation_timeout)
        refuse_if_killed(edges.history)
        if policy_set is None:
            assert retry is not None
            policy_set = load_policies(_policies_of_job(edges.history, retry))
        try:
            planning = SweepProgress("planning") if request.mode is Mode.LIVE else nullcontext()
            with planning as progress:
                spec = prepare(env, edges, policy_set, request, progress=progress, cancel=cancel)
        except KillSwitchEngaged as exc:
            err.print(f"[bold red]{exc}[/]: planning stopped; nothing was written", soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted while planning: nothing was written[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None

        if dry_run:
            plan = plan_document(spec, subscriptions=settings.subscriptions)
            if out is not None:
                write_output(to_json(plan), out)
            if output == "json":
                if out is None:
                    write_output(to_json(plan), None)
            else:
                console().print(Group(format_plan(plan), format_preview(spec)))
            err.print("dry run: nothing was written")
            return

        err.print(format_preview(spec))
        _confirm(spec, yes)
        record_job(edges.history, spec, principal=edges.principal)
        err.print(
            f"job {spec.id} started (fleet jobs show {spec.id}; fleet jobs cancel {spec.id})",
            soft_wrap=True,
        )
        with JobDisplay() as display:
            result = run_remediation(
                env, spec, edges, progress=display, cancel=cancel, approval_timeout=approval_timeout
            )
        report = recorded_report(edges.history, spec.id)
    _emit(report, output, out)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _resume(
    ref: str,
    policies: list[Path],
    *,
    force: bool,
    output: str,
    out: Path | None,
    approval_timeout: float,
    operation_timeout: float,
) -> None:
    """``--resume JOB``: continue a local job whose process died."""
    settings = load_settings()
    with environment(settings) as env:
        edges = make_edges(env, operation_timeout=operation_timeout)
        refuse_if_killed(edges.history)
        job_id = edges.history.find_job(ref)
        job = edges.history.get_job(job_id)
        assert job is not None
        check_resumable(job, force=force)
        policy_set = load_policies(policies or _policies_of_job(edges.history, job_id))
        if policy_set.revision != job.get("policyRevision"):
            fail(
                f"the policies changed since job {job_id} started (revision "
                f"{job.get('policyRevision')}, now {policy_set.revision}): it cannot be "
                f"resumed; fleet remediate --retry {job_id} re-applies what it left undone"
            )
        spec = load_spec(
            edges.history, job_id, policy_set, edges.fingerprint_key, edges.session.vaults()
        )
        spec.resumed = True
        err.print(f"resuming job {job_id}", soft_wrap=True)
        with JobDisplay() as display:
            result = resume_job(
                env, spec, edges, progress=display, approval_timeout=approval_timeout
            )
        report = recorded_report(edges.history, job_id)
    _emit(report, output, out)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _emit(report: dict[str, Any], output: str, out: Path | None) -> None:
    if output == "json":
        write_output(to_json(report), out)
    elif out is not None:
        _emit_table(report, out)
    else:
        console().print(format_job_report(report))


def _emit_table(report: dict[str, Any], out: Path) -> None:
    import io

    buf = io.StringIO()
    Console(file=buf, width=160, force_terminal=False, highlight=False).print(
        format_job_report(report)
    )
    write_output(buf.getvalue(), out)


def _celery(policies: list[Path], request: JobRequest, **options: Any) -> None:
    """Hand the job to the Celery engine (``fleet.cli.distributed``)."""
    from fleet.cli import distributed

    distributed.celery_remediate(policies, request, **options)

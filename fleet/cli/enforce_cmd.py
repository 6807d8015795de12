"""``fleet enforce``: a scheduled sweep followed by the automatic remediation of each policy
that says ``remediation.auto`` (docs/enforcement.md). For cron on a single machine; the Celery
beat does the same after ``fleet.sweep.scheduled``.

Exit codes: 0 done (also when clusters were deferred or skipped), 1 a job was stopped (its
failure budget, an approval that timed out), 2 bad input, 130 the kill switch stopped it.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

import typer

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
from fleet.cli.jobs_cmds import console, format_job_report, refuse_if_killed
from fleet.cli.sweep_cmds import OutOpt, PoliciesOpt
from fleet.core.errors import EXIT_INTERRUPTED, KillSwitchEngaged
from fleet.jobs import enforce as enforcement
from fleet.jobs.job_report import recorded_report
from fleet.jobs.runs import environment, run_sweep


@app.command()
def enforce(
    policies: PoliciesOpt = [],  # noqa: B006 (typer reads the default; never mutated)
    policy: Annotated[
        str | None, typer.Option("--policy", help="Only this policy's automatic job.")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    out: OutOpt = None,
    approval_timeout: Annotated[
        float,
        typer.Option(
            "--approval-timeout", min=0, help="Seconds a wave that asks for approval waits."
        ),
    ] = 3600.0,
    verbose: VerboseOpt = 0,
) -> None:
    """Sweep, then create what is missing on new clusters, with no person involved.

    Each enforce policy with ``remediation.auto`` gets one job limited to its resources and to
    what ``auto`` allows (creates by default), in its waves, within its failure budget and its
    windows, at most ``maxClustersPerRun`` clusters. Run it from cron at the policies' schedule.
    """
    setup_logging(verbose)
    if output not in ("table", "json"):
        fail(f"unknown output {output!r}: use table or json")
    settings = load_settings()
    policy_set = load_policies(policies)
    wanted = enforcement.auto_policies(policy_set, policy)
    if not wanted:
        fail("no enforce policy with remediation.auto" + (f" named {policy!r}" if policy else ""))
    paths = [str(p.resolve()) for p in policies]
    cancel = threading.Event()
    reports: list[dict[str, Any]] = []
    code = 0
    with environment(settings) as env:
        assert env.history is not None
        refuse_if_killed(env.history)
        swept = run_sweep(env, policy_set, cancel=cancel, keep_judgements=False)
        if swept.stopped_by is not None or not swept.info.complete:
            err.print(f"[bold red]{swept.stopped_by or 'interrupted'}[/]: nothing was written")
            raise typer.Exit(EXIT_INTERRUPTED)
        for found in wanted:
            try:
                spec, result = enforcement.run_local(
                    env,
                    policy_set,
                    found,
                    policy_paths=paths,
                    approval_timeout=approval_timeout,
                    cancel=cancel,
                )
            except KillSwitchEngaged as exc:
                err.print(f"[bold red]{exc}[/]: nothing more was written", soft_wrap=True)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            reports.append(recorded_report(env.history, spec.id))
            code = max(code, result.exit_code)
    if output == "json":
        write_output(to_json({"sweep": swept.info.id, "jobs": reports}), out)
    else:
        for report in reports:
            console().print(format_job_report(report))
    if code:
        raise typer.Exit(code)

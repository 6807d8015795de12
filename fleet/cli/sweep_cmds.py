"""``fleet sweep`` and ``fleet plan``: judge the fleet; show what remediation would change."""

from __future__ import annotations

import threading
from pathlib import Path
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
    to_yaml,
    write_output,
)
from fleet.cli.jobs_cmds import refuse_if_killed, refuse_if_killed_anywhere
from fleet.cli.views import SweepProgress, format_plan, format_summary
from fleet.core.errors import EXIT_INTERRUPTED, EXIT_INVALID
from fleet.jobs.deferrals import plan_windows
from fleet.jobs.runs import environment, run_sweep, sweep_plan
from fleet.jobs.sweep import SweepOutcome
from fleet.record.history import open_history

PoliciesOpt = Annotated[
    list[Path],
    typer.Option(
        "--policies", "-p", help="Policy files or directories (repeatable).", show_default=False
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write the result to this file instead of stdout.")
]
EngineOpt = Annotated[
    str, typer.Option("--engine", help="local (this machine) or celery (submit to workers).")
]


def _render_report(report: dict[str, Any], output: str) -> str:
    if output == "json":
        return to_json(report)
    if output == "yaml":
        return to_yaml(report)
    import io

    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=140, force_terminal=False, highlight=False).print(
        format_summary(report)
    )
    return buf.getvalue()


def _emit_report(report: dict[str, Any], output: str, out: Path | None) -> None:
    if output == "table" and out is None:
        from rich.console import Console

        Console(highlight=False).print(format_summary(report))  # colours when stdout is a terminal
        return
    write_output(_render_report(report, output), out)


def _sweep(policies: list[Path], *, verbose: int, what: str) -> SweepOutcome:
    setup_logging(verbose)
    settings = load_settings()
    policy_set = load_policies(policies)
    cancel = threading.Event()
    with environment(settings) as env:
        assert env.history is not None
        refuse_if_killed(env.history)
        with SweepProgress(what) as progress:
            outcome = run_sweep(env, policy_set, progress=progress, cancel=cancel)
        if what == "planning":
            # Each writing cluster's window, so the plan says when it would be written.
            plans = plan_windows(env, policy_set, [j.plan for j in outcome.judgements], env.now())
            outcome.judgements[:] = [
                j._replace(plan=p) for j, p in zip(outcome.judgements, plans, strict=True)
            ]
    if outcome.stopped_by is not None:
        err.print(
            f"[bold red]{outcome.stopped_by}[/]: the sweep stopped; the report holds the "
            "clusters judged so far",
            soft_wrap=True,
        )
    return outcome


@app.command()
def sweep(
    policies: PoliciesOpt = [],  # noqa: B006 (typer reads the default; never mutated)
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or yaml.")] = "table",
    out: OutOpt = None,
    engine: EngineOpt = "local",
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 when any cluster is in one of these states (comma-separated, e.g. "
            "noncompliant,error): for CI gates.",
        ),
    ] = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Judge every targeted cluster against the policies and report compliance.

    The table is the summary an engineer reads first; ``-o json`` prints the full report
    (docs/contracts.md, Compliance vocabulary) alone on stdout, so it pipes into jq. Every sweep is
    stored in the history database (``fleet report`` reads it).
    """
    if output not in ("table", "json", "yaml"):
        fail(f"unknown output {output!r}: use table, json or yaml")
    if engine == "celery":
        from fleet.cli.distributed import celery_sweep

        refuse_if_killed_anywhere()
        _emit_report(celery_sweep(policies, verbose=verbose), output, out)
        return
    if engine != "local":
        fail(f"unknown engine {engine!r}: use local or celery")
    outcome = _sweep(policies, verbose=verbose, what="sweeping")
    report = outcome.report()
    if output != "table":
        # The sweep was recorded: its findings' ages are in the history now (drift age).
        with open_history(load_settings()) as history:
            report = history.with_ages(report)
    _emit_report(report, output, out)
    if not outcome.info.complete:
        err.print(
            "[yellow]the sweep was interrupted; the report holds the clusters judged so far[/]"
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if fail_on:
        wanted = {s.strip() for s in fail_on.split(",") if s.strip()}
        bad = sum(report["summary"]["byState"].get(s, 0) for s in wanted)
        if bad:
            err.print(f"{bad} cluster(s) in state {', '.join(sorted(wanted))}")
            raise typer.Exit(1)


@app.command()
def plan(
    policies: PoliciesOpt = [],  # noqa: B006
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    out: OutOpt = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 when nothing would change, 2 when something would."
        ),
    ] = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Show what a remediation would change, per cluster, resource and field (writes nothing).

    ``--out plan.json`` saves the plan; ``fleet remediate --plan plan.json`` applies exactly it
    and refuses clusters that changed since.
    """
    if output not in ("table", "json"):
        fail(f"unknown output {output!r}: use table or json")
    outcome = _sweep(policies, verbose=verbose, what="planning")
    document = sweep_plan(outcome)
    if out is not None:
        write_output(to_json(document), out)
    if output == "json":
        if out is None:
            write_output(to_json(document), None)
    else:
        from rich.console import Console

        Console(highlight=False).print(format_plan(document))
    if not outcome.info.complete:
        raise typer.Exit(EXIT_INTERRUPTED)
    changes = (
        document["summary"]["create"]
        + document["summary"]["update"]
        + document["summary"]["delete"]
    )
    if detailed_exitcode and changes:
        raise typer.Exit(EXIT_INVALID)

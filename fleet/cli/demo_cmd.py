"""``fleet demo``: the main job on the embedded default — no Azure account, nothing to set up."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleet.cli.app import app
from fleet.cli.common import err, setup_logging
from fleet.cli.views import SweepProgress, format_summary
from fleet.core.errors import EXIT_INTERRUPTED
from fleet.demo import run_demo


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the snapshot, history database and reports go.")
    ] = Path("fleet-demo"),
    clusters: Annotated[int, typer.Option(min=20, max=100000, help="Clusters to generate.")] = 300,
    subscriptions: Annotated[int, typer.Option(min=1, max=100, help="Subscriptions.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the generated fleet.")] = 7,
    policies: Annotated[
        Path | None,
        typer.Option("--policies", "-p", help="Policies to sweep (default: the examples)."),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
) -> None:
    """Sweep a generated fleet of AKS and Arc clusters served by the built-in ARM emulator.

    Everything runs here: the emulator speaks ARM over HTTPS to the real Azure SDK, with ARM's
    throttling and latency, so what you see is what fleet does against Azure.
    """
    setup_logging(verbose)
    err.print(
        f"generating {clusters} clusters in {subscriptions} subscriptions (seed {seed}); "
        "serving them from the ARM emulator on 127.0.0.1 ..."
    )
    with SweepProgress("sweeping") as progress:
        result = run_demo(
            directory=directory,
            clusters=clusters,
            subscriptions=subscriptions,
            seed=seed,
            policies=policies,
            progress=progress,
        )
    console = Console(highlight=False)
    console.print(format_summary(result.outcome.report()))
    d = shlex.quote(str(directory))
    console.print(
        f"\n[bold]HTML report:[/] {result.html}\n[bold]JSON report:[/] {result.json}\n"
        f"[bold]History:[/]     {result.database}\n"
        "\n[bold]Next[/]\n"
        f"  serve this fleet:    fleet emulator serve --snapshot {d}/fleet-snapshot.json\n"
        "  point fleet at it:   export FLEET_ARM_ENDPOINT=<endpoint> "
        "FLEET_ARM_CA_BUNDLE=<caBundle> FLEET_AUTH=emulator\n"
        "  see the fixes:       fleet plan -p policies/\n"
        "  apply them in waves: fleet remediate -p policies/\n"
        f"  reports from history: FLEET_STATE_DIR={d} fleet report latest --format md\n",
        soft_wrap=True,
    )
    if not result.outcome.info.complete:
        raise typer.Exit(EXIT_INTERRUPTED)

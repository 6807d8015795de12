"""``fleet snapshot --out FILE``: export the fleet in the snapshot format, for offline replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fleet.cli.app import app
from fleet.cli.common import err, load_policies, load_settings, setup_logging
from fleet.cli.views import SweepProgress
from fleet.jobs.runs import environment
from fleet.jobs.snapshot import export_snapshot


@app.command()
def snapshot(
    out: Annotated[Path, typer.Option("--out", help="Where to write the snapshot (JSON).")],
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies",
            "-p",
            help="Export only the clusters these policies target (default: all in scope).",
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
) -> None:
    """Export the current state of the clusters in scope as a fleet snapshot (docs/contracts.md,
    Fleet snapshot).

    Load it into the emulator (``fleet emulator serve --snapshot FILE``) to replay a real fleet
    offline: sweeps of the replay give the same verdicts as sweeps of the real fleet.
    """
    setup_logging(verbose)
    settings = load_settings()
    policy_set = load_policies(policies) if policies else None
    with (
        environment(settings, record=False) as env,
        SweepProgress("exporting") as progress,
    ):
        snap, failed = export_snapshot(
            env, policy_set, on_cluster=lambda _: progress.tick("clusters")
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(snap, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    clusters = sum(
        1
        for r in snap["resources"]
        if r["type"].lower().endswith(("managedclusters", "connectedclusters"))
    )
    err.print(f"wrote {out}: {clusters} clusters, {len(snap['resources'])} resources")
    if failed:
        err.print(f"[yellow]{len(failed)} cluster(s) could not be read and are missing:[/]")
        for cid in failed[:20]:
            err.print(f"  {cid}", markup=False)
        raise typer.Exit(1)
    if snap.get("incomplete"):
        raise typer.Exit(130)

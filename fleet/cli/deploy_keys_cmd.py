"""``fleet deploy-keys``: list the SSH deploy keys ARM generated for the fleet (JSON or CSV)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fleet.cli.app import app
from fleet.cli.common import err, load_policies, load_settings, setup_logging
from fleet.jobs.deploy_keys import deploy_keys, to_csv, to_json
from fleet.jobs.runs import environment


@app.command("deploy-keys")
def deploy_keys_cmd(
    output: Annotated[
        str, typer.Option("--output", "-o", help="json (a list of rows) or csv.")
    ] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies",
            "-p",
            help="Only the clusters these policies target (default: all in scope).",
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
) -> None:
    """List the public keys ARM generated for flux configurations with an ssh:// source and
    no private key: cluster, configuration, repository URL and the OpenSSH public key, to be
    registered as deploy keys of each repository.

    Exit 1 when some clusters could not be read (their keys are missing from the list).
    """
    setup_logging(verbose)
    if output not in ("json", "csv"):
        err.print(f"[red]--output must be json or csv, not {output!r}[/]")
        raise typer.Exit(2)
    settings = load_settings()
    policy_set = load_policies(policies) if policies else None
    with environment(settings, record=False) as env:
        keys, failed = deploy_keys(env, policy_set)
    text = to_csv(keys) if output == "csv" else json.dumps(to_json(keys), indent=1) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {out}: {len(keys)} deploy keys")
    if failed:
        err.print(f"[yellow]{len(failed)} cluster(s) could not be read; their keys are missing:[/]")
        for cid in failed[:20]:
            err.print(f"  {cid}", markup=False)
        raise typer.Exit(1)

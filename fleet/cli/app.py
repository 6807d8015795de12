"""The Typer application every ``fleet.cli`` module registers its commands on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="fleet",
    help=(
        "Keep AKS and Azure Arc fleets consistent with declarative Flux (GitOps) policy: "
        "sweep for drift, plan and remediate in waves, report compliance."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

"""The Typer application every ``fleet.cli`` module registers its commands on.

It is also the one place where errors become exit codes: any ``fleet.core.errors.FleetError``
a command lets through is printed (its message, then its details) and ends the command with the
error's ``exit_code``. Commands therefore raise, or let through, instead of catching and exiting
themselves; anything that is not a ``FleetError`` is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from fleet.core.errors import FleetError, PolicyLoadError

_err = Console(stderr=True, highlight=False)


def report(exc: FleetError) -> None:
    """How a ``FleetError`` is shown on stderr."""
    if isinstance(exc, PolicyLoadError):
        for issue in exc.issues:
            _err.print(escape(str(issue)), soft_wrap=True)
        errors = sum(1 for i in exc.issues if i.severity == "error")
        _err.print(f"[bold red]error:[/] {errors} problem(s) in the policies; nothing was done")
        return
    _err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    for line in exc.details():
        _err.print(f"  {escape(line)}", soft_wrap=True)


class FleetGroup(TyperGroup):
    """The top-level command group: maps ``FleetError`` to its exit code, once for all."""

    def invoke(self, ctx: Any) -> Any:  # Typer's own Context type is private
        try:
            return super().invoke(ctx)
        except FleetError as exc:
            report(exc)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="fleet",
    cls=FleetGroup,
    help=(
        "Keep AKS and Azure Arc fleets consistent with declarative Flux (GitOps) policy: "
        "sweep for drift, plan and remediate in waves, report compliance."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

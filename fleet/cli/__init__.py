"""The ``fleet`` command (docs/contracts.md, Command line, a contract for the command names).

The Typer app lives in ``fleet.cli.app``; each command group is a module of this package that
registers its commands on import. Commands stay thin: parse arguments, build settings, call one
library function, render the result. Output meant for pipes goes to stdout; logs and progress
go to stderr.
"""

from __future__ import annotations

# Each import registers a command group on the app.
from fleet.cli import (  # noqa: F401
    db_cmds,
    demo_cmd,
    deploy_keys_cmd,
    emulator_generate,
    emulator_serve,
    enforce_cmd,
    jobs_cmds,
    notify_cmds,
    policy_cmds,
    rbac_cmd,
    remediate_cmds,
    report_cmds,
    serve_cmd,
    snapshot_cmd,
    sweep_cmds,
)
from fleet.cli.app import app


def main() -> None:
    """Entry point of the ``fleet`` console script."""
    app()


__all__ = ["app", "main"]

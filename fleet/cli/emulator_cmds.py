"""``fleet emulator ...``: the offline ARM emulator's command group.

The group is defined here; ``emulator_serve`` and ``emulator_generate`` register its commands.
"""

from __future__ import annotations

import typer

from fleet.cli.app import app

emulator_app = typer.Typer(
    help="The offline ARM emulator: generate a fleet, serve it over HTTPS to the real SDK.",
    no_args_is_help=True,
)
app.add_typer(emulator_app, name="emulator")

"""``fleet db``: the history database's schema revision, and the one step that migrates it.

    fleet db status    {"database", "current", "head", "pending"}; exit 0 current, 1 pending
    fleet db upgrade   {"database", "from", "to"}; idempotent

Opening the history never migrates it unless ``FLEET_DATABASE_AUTO_UPGRADE`` is on (the
default, for one user on one machine). A deployment with many workers turns that off and runs
``fleet db upgrade`` once, before the upgraded workers start (docs/distributed.md). Each
command prints one JSON line on stdout, for scripts and deployment hooks.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from fleet.cli.app import app
from fleet.cli.common import DatabaseOpt, VerboseOpt, load_settings, setup_logging
from fleet.core.errors import EXIT_FAILED
from fleet.record import migrate
from fleet.record.db import redacted, unavailable

db_app = typer.Typer(
    help="The history database's schema: show its revision, upgrade it to this fleet's.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


def _url(database: str | None) -> str:
    return database or load_settings().effective_database_url


def _print(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data))


@db_app.command("status")
def status(database: DatabaseOpt = None, verbose: VerboseOpt = 0) -> None:
    """Print the database's schema revision, this fleet's head and the migrations pending.

    Exit 0 when the schema is current, 1 when `fleet db upgrade` has work to do, 2 when the
    database was migrated by a newer fleet. Reads only: an absent SQLite file is not created.
    """
    setup_logging(verbose)
    url = _url(database)
    with unavailable(url):
        found = migrate.stored(url)
    todo = migrate.pending(found)
    _print({"database": redacted(url), "current": found, "head": migrate.head(), "pending": todo})
    if todo:
        raise typer.Exit(EXIT_FAILED)


@db_app.command("upgrade")
def upgrade(database: DatabaseOpt = None, verbose: VerboseOpt = 0) -> None:
    """Migrate the database to this fleet's schema (creating it when empty).

    One transaction; concurrent upgrades wait for each other and the second does nothing.
    Safe to run again: an up-to-date database is left as it is.
    """
    setup_logging(verbose)
    url = _url(database)
    with unavailable(url):
        found = migrate.upgrade(url)
    _print({"database": redacted(url), "from": found, "to": migrate.head()})

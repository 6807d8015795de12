"""``fleet db status`` and ``fleet db upgrade`` on SQLite and PostgreSQL (``db_url``), and a
command refusing an out-of-date database when ``FLEET_DATABASE_AUTO_UPGRADE`` is off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import fleet.cli  # noqa: F401  (registers every command group on the app)
from fleet.cli.app import app
from fleet.core.errors import SchemaTooNew
from fleet.record import migrate
from fleet.record.db import redacted
from tests.record.conftest import migrated_by_a_newer_fleet

runner = CliRunner()
ALL = migrate.pending(None)


def db(*args: str, url: str, **env: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, ["db", *args, "--database", url], env=env or None)
    out = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, out, result.stderr


def test_status_before_and_after_an_upgrade(db_url: str) -> None:
    code, out, _ = db("status", url=db_url)
    assert code == 1
    assert out == {"database": redacted(db_url), "current": None, "head": ALL[-1], "pending": ALL}
    if db_url.startswith("sqlite"):
        assert not Path(make_url(db_url).database or "").exists()  # status only reads

    code, out, err = db("upgrade", url=db_url)
    assert code == 0, err
    assert out == {"database": redacted(db_url), "from": None, "to": migrate.head()}

    code, out, _ = db("status", url=db_url)
    assert code == 0
    assert (out["current"], out["head"], out["pending"]) == (migrate.head(), migrate.head(), [])


def test_upgrade_twice_is_idempotent(db_url: str) -> None:
    assert db("upgrade", url=db_url)[:2] == (
        0,
        {"database": redacted(db_url), "from": None, "to": migrate.head()},
    )
    assert db("upgrade", url=db_url)[:2] == (
        0,
        {"database": redacted(db_url), "from": migrate.head(), "to": migrate.head()},
    )
    assert migrate.stored(db_url) == migrate.head()


def test_status_of_an_older_database_lists_what_is_pending(db_url: str) -> None:
    migrate.upgrade(db_url, "0003")
    code, out, _ = db("status", url=db_url)
    assert code == 1
    assert out["current"] == "0003" and out["pending"] == ALL[ALL.index("0003") + 1 :]
    assert db("upgrade", url=db_url)[1]["from"] == "0003"
    assert db("status", url=db_url)[0] == 0


def test_a_newer_database_is_reported_not_touched(db_url: str) -> None:
    migrated_by_a_newer_fleet(db_url)
    for command in ("status", "upgrade"):
        code, out, err = db(command, url=db_url)
        assert code == 2 and out is None and "newer than this fleet" in err
    with pytest.raises(SchemaTooNew, match="schema revision 9999,"):  # not touched
        migrate.stored(db_url)


def test_commands_refuse_an_old_schema_when_auto_upgrade_is_off(db_url: str) -> None:
    off = {"FLEET_DATABASE_AUTO_UPGRADE": "false", "FLEET_DATABASE_URL": db_url}
    for args in (["report", "list"], ["jobs", "list"]):
        result = runner.invoke(app, args, env=off)
        assert result.exit_code == 2, result.stderr
        assert "holds no schema yet" in result.stderr and "run: fleet db upgrade" in result.stderr
    assert migrate.stored(db_url) is None
    assert db("upgrade", url=db_url)[0] == 0
    result = runner.invoke(app, ["jobs", "list", "-o", "json"], env=off)
    assert result.exit_code == 0, result.stderr
    # on (the default) the command upgrades by itself
    migrate.downgrade(db_url, "0001")
    default = {"FLEET_DATABASE_URL": db_url, "FLEET_DATABASE_AUTO_UPGRADE": None}
    result = runner.invoke(app, ["jobs", "list", "-o", "json"], env=default)
    assert result.exit_code == 0, result.stderr
    assert migrate.stored(db_url) == migrate.head()

"""Database fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL: ``FLEET_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/
postgres``) names a server and a maintenance database; each test gets a fresh database created
there and dropped afterwards. When no server answers, the PostgreSQL half is skipped locally and
fails in CI (``FLEET_CI=1``), so CI can never pass without having tested PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from fleet.record import migrate, schema
from fleet.record.db import make_engine

ADMIN_URL = os.environ.get(
    "FLEET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_reachable: bool | None = None


def _postgres_available() -> bool:
    global _reachable
    if _reachable is None:
        try:
            engine = create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _reachable = True
        except (OperationalError, ImportError):
            _reachable = False
    return _reachable


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    if not _postgres_available():
        if os.environ.get("FLEET_CI"):
            pytest.fail(
                f"PostgreSQL is required in CI but {make_url(ADMIN_URL).host} does not answer"
            )
        pytest.skip(f"no PostgreSQL at {make_url(ADMIN_URL).render_as_string(hide_password=True)}")
    name = f"fleet_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """The URL of an empty database, once per backend."""
    if request.param == "sqlite":
        # A subdirectory that does not exist yet: History must create it.
        return f"sqlite:///{tmp_path}/state/fleet.db"
    return str(request.getfixturevalue("postgres_url"))


def migrated_by_a_newer_fleet(url: str) -> None:
    """Bring the database to head, then mark it with a revision this fleet does not know."""
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()

"""Schema versioning: bring any older history database to the current revision.

The schema is versioned with Alembic. The migrations ship inside the package
(``fleet/record/migrations``) and run programmatically, never on their own: ``fleet db upgrade``
runs ``upgrade(url)``, and so does ``fleet.record.history.open_history`` when
``FLEET_DATABASE_AUTO_UPGRADE`` is on (the default, for one user on one machine). ``History``
itself only checks the revision (``require_head``): with many workers, a migration is one
deliberate step, not a race between whichever processes start first.

- One transaction: on PostgreSQL DDL is transactional; on SQLite the migration connection
  issues ``BEGIN IMMEDIATE`` itself (pysqlite would otherwise auto-commit each DDL statement),
  so a failed upgrade leaves the previous schema intact.
- Concurrent upgraders serialise: PostgreSQL takes an advisory lock, SQLite's
  ``BEGIN IMMEDIATE`` takes the write lock; the second one then finds the schema current and
  does nothing.
- Foreign keys are off on SQLite while migrating: Alembic rebuilds a table by copy-and-drop,
  and dropping a parent with foreign keys on would cascade-delete its children.
- A database newer than this fleet (someone ran a later version) is refused with a clear
  message instead of being touched.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, make_url

from fleet.core.errors import SchemaOutOfDate, SchemaTooNew
from fleet.record.db import ensure_sqlite_dir, is_memory, is_sqlite, make_engine, redacted
from fleet.record.schema import VERSION_TABLE

MIGRATIONS = Path(__file__).with_name("migrations")
#: pg_advisory_xact_lock key: "fleet" in ASCII, so it is recognisable in pg_locks.
_PG_LOCK = 0x666C656574


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def _script() -> ScriptDirectory:
    # Read once per process: every History open checks the revision against it.
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this fleet knows."""
    revision = _script().get_current_head()
    assert revision is not None
    return revision


def pending(found: str | None) -> list[str]:
    """The revisions an upgrade from ``found`` (None: an empty database) would apply, oldest
    first."""
    steps = _script().iterate_revisions(head(), found or "base")
    return [s.revision for s in reversed(list(steps))]


def current(connection: Connection) -> str | None:
    """The database's revision (None for an empty database)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def stored(url: str, *, engine: Engine | None = None) -> str | None:
    """The database's revision (None: empty), read without changing anything: a SQLite file
    that does not exist is an empty database, and is not created. A revision this fleet does
    not know raises ``SchemaTooNew``."""
    u = make_url(url)
    if is_sqlite(u) and not is_memory(u):
        assert u.database is not None
        if not Path(u.database).expanduser().exists():
            return None
    reader = engine if engine is not None else make_engine(url)
    try:
        with reader.connect() as conn:
            found = current(conn)
    finally:
        if engine is None:
            reader.dispose()
    _check_known(found, url)
    return found


def require_head(url: str, *, engine: Engine | None = None) -> str:
    """The database's revision when it is this fleet's head; otherwise ``SchemaOutOfDate``
    (empty or older: ``fleet db upgrade``) or ``SchemaTooNew``."""
    found = stored(url, engine=engine)
    if found is None or found != head():
        raise SchemaOutOfDate(redacted(url), found, head())
    return found


def _check_known(revision: str | None, url: str) -> None:
    if revision is None:
        return
    if revision not in {s.revision for s in _script().walk_revisions()}:
        raise SchemaTooNew(
            f"the history database {redacted(url)} has schema revision {revision}, newer than "
            f"this fleet knows (head {head()}): upgrade fleet, "
            "or point FLEET_DATABASE_URL elsewhere"
        )


def upgrade(url: str, revision: str = "head", *, engine: Engine | None = None) -> str | None:
    """Migrate the database at ``url`` to ``revision``; returns the revision it was at.

    ``engine`` (the caller's) is used only for the cheap "already current" check, so opening a
    current database takes no write lock.
    """
    target = head() if revision == "head" else revision
    ensure_sqlite_dir(url)
    if engine is not None:
        with engine.connect() as conn:
            found = current(conn)
        _check_known(found, url)
        if found == target:
            return found
    # An in-memory SQLite database exists only on the caller's one connection: migrate there.
    memory = engine is not None and is_memory(make_url(url))
    migrator = (
        engine
        if memory and engine is not None
        else make_engine(url, foreign_keys=False, atomic_ddl=True)
    )
    try:
        with migrator.begin() as conn:
            if not is_sqlite(url):
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            found = current(conn)
            _check_known(found, url)
            if found != target:
                cfg = _config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
            if is_sqlite(url):
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                if broken is not None:
                    raise RuntimeError(
                        f"migration left a dangling reference in {broken[0]}; rolled back"
                    )
        return found
    finally:
        if not memory:
            migrator.dispose()


def downgrade(url: str, revision: str) -> None:
    """Migrate down to ``revision`` (for tests and emergency rollbacks; loses newer data)."""
    migrator = make_engine(url, foreign_keys=False, atomic_ddl=True)
    try:
        with migrator.begin() as conn:
            if not is_sqlite(url):
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        migrator.dispose()

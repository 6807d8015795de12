"""Database plumbing shared by the parts of the history store and its migrations.

One place decides how fleet talks to SQL: the engine options per backend (SQLite pragmas,
PostgreSQL pool checks), the JSON-as-text column type, UTC timestamps, and what every part of
``History`` shares (``Store``: the URL and the engine; batching and message clean-up). SQLite is
the default (one file, no server); PostgreSQL is for shared installations and dashboards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Text, create_engine, event
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from fleet.core import redact
from fleet.core.errors import HistoryUnavailable

#: Rows per INSERT batch (executemany). Large enough to amortise round trips, small enough
#: that one batch of a 50,000-cluster sweep never holds much memory.
BATCH = 2000
#: Stored error messages and reasons are cut to this many characters.
MESSAGE_MAX = 4000


class Store:
    """What every part of the history store works with: the database URL, one pooled engine,
    and whether it is PostgreSQL (bulk loads take COPY there).

    The parts (``fleet.record.sweep_recording`` and its siblings) are mixins of ``History``,
    which sets these attributes once when it opens the database.
    """

    url: str
    _engine: Engine
    _postgres: bool


def _default(value: object) -> object:
    # Reports are JSON already; this only catches odd inputs (sets, Decimals, Paths) so that a
    # strange value is stored as its text rather than failing a whole sweep.
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON text (orjson: fast enough for 50,000 verdicts a sweep)."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


class JsonText(TypeDecorator[Any]):
    """JSON stored as text on every backend.

    Not PostgreSQL's JSONB on purpose: JSONB reorders keys, so a report read back from
    PostgreSQL would print differently from the same report read back from SQLite. Text keeps
    the recorded document byte for byte; PostgreSQL users can still query it with ``::jsonb``.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else loads(value)


def utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime. SQLite hands back naive values: they were stored as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """``2026-11-25T18:02:00Z`` (the form pydantic gives the report's timestamps)."""
    value = utc(value)
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_time(value: object) -> datetime | None:
    """A report timestamp (ISO 8601 string or datetime) as aware UTC; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str):
        return utc(datetime.fromisoformat(value))
    raise ValueError(f"not a timestamp: {value!r}")


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and (url.database in (None, "", ":memory:"))


def redacted(url: str | URL) -> str:
    """The URL for messages: never print a password."""
    return make_url(url).render_as_string(hide_password=True)


def ensure_sqlite_dir(url: str | URL) -> None:
    """Create the parent directory of a SQLite file (the default lives in the state dir)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and not is_memory(u):
        assert u.database is not None
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str | URL, *, foreign_keys: bool = True, atomic_ddl: bool = False) -> Engine:
    """An engine with fleet's per-backend settings.

    SQLite: WAL so that ``fleet report`` can read while a sweep writes, ``busy_timeout`` so a
    second writer waits instead of failing, foreign keys on (SQLite's default is off, and the
    history relies on ON DELETE CASCADE). ``atomic_ddl`` (migrations) replaces pysqlite's
    implicit transactions with an explicit ``BEGIN IMMEDIATE``, so a schema upgrade is one
    transaction that a concurrent upgrader waits for, instead of DDL auto-committing halfway.
    """
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return create_engine(u, pool_pre_ping=True, json_serializer=dumps, json_deserializer=loads)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if is_memory(u):
        # One shared connection, otherwise every pooled connection is a new empty database.
        kwargs["poolclass"] = StaticPool
    engine = create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        if atomic_ddl:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        if not is_memory(u):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    if atomic_ddl:

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def now_utc() -> datetime:
    return datetime.now(UTC)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size`` (batched INSERTs, bounded ``IN (...)`` lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def clip(value: Any, limit: int) -> str | None:
    """``value`` as text of at most ``limit`` characters (None stays None)."""
    if value is None:
        return None
    return str(value)[:limit]


def clean_message(message: str | None) -> str | None:
    """An error message or reason fit to store: registered secrets masked, length bounded."""
    if message is None:
        return None
    text = redact.text(message)
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3] + "..."


@contextmanager
def unavailable(url: str) -> Iterator[None]:
    """Around opening or migrating the database at ``url``: a database that cannot be reached
    (or refuses) is a ``HistoryUnavailable`` naming it (without its password) and the driver's
    first line."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise HistoryUnavailable(
            f"cannot open the history database {redacted(url)}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}"
        ) from None

"""The compliance history: every sweep, every verdict, every remediation job and ARM write.

``History(url)`` opens a SQLAlchemy database: a SQLite file by default
(``Settings.effective_database_url``), PostgreSQL (``postgresql+psycopg://...``) for shared
installations. It is the one entry point callers use; its parts live in one module each and
share its engine: recording sweeps (``sweep_recording``), reading them back and retention
(``sweep_reading``), jobs and approvals (``jobs``), the audit trail of ARM writes (``audit``)
and of people's actions (``events``), installation-wide controls (``controls``), the local
engine's cluster write locks (``locks``), applied secret fingerprints (``fingerprints``) and the
notification outbox (``notifications``).

Opening never migrates: ``History`` checks once that the schema is at this fleet's head and
otherwise raises ``SchemaOutOfDate`` (``fleet db upgrade``) or ``SchemaTooNew``. The process
edges (the CLI, the demo, the workers) open the history through ``open_history``, the one place
that upgrades first, and only when ``FLEET_DATABASE_AUTO_UPGRADE`` says so.
"""

from __future__ import annotations

from types import TracebackType
from typing import overload

from sqlalchemy.engine import Engine

from fleet.record import migrate
from fleet.record.audit import AuditTrail
from fleet.record.controls import Controls
from fleet.record.db import make_engine, redacted, unavailable
from fleet.record.events import AuditEvents
from fleet.record.fingerprints import AppliedFingerprints
from fleet.record.jobs import JobRecords
from fleet.record.locks import ClusterLocks
from fleet.record.notifications import Notifications
from fleet.record.sweep_reading import SweepReading
from fleet.record.sweep_recording import SweepRecording
from fleet.settings import Settings

__all__ = ["History", "open_history"]


class History(
    SweepRecording,
    SweepReading,
    JobRecords,
    AuditTrail,
    AuditEvents,
    Controls,
    ClusterLocks,
    AppliedFingerprints,
    Notifications,
):
    """The history database. Thread-safe (a pooled engine); use as a context manager.

    ``engine``: one made by ``fleet.record.db.make_engine`` for ``url`` that the history then
    owns (``open_history`` passes the one it migrated: an in-memory database exists only on it).
    """

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self._engine = engine if engine is not None else make_engine(url)
        self._postgres = self._engine.dialect.name == "postgresql"
        try:
            migrate.require_head(url, engine=self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"History({redacted(self.url)!r})"


@overload
def open_history(source: Settings, *, upgrade: bool | None = None) -> History: ...


@overload
def open_history(source: str, *, upgrade: bool) -> History: ...


def open_history(source: Settings | str, *, upgrade: bool | None = None) -> History:
    """Open the history of ``source`` (settings, or a database URL), migrating it to this
    fleet's head first when ``upgrade`` is true.

    With settings, ``upgrade`` defaults to ``FLEET_DATABASE_AUTO_UPGRADE``. Without an upgrade
    an empty or older database raises ``SchemaOutOfDate``.
    """
    if isinstance(source, Settings):
        url = source.effective_database_url
        upgrade = source.database_auto_upgrade if upgrade is None else upgrade
    else:
        url = source
    with unavailable(url):
        if not upgrade:
            return History(url)
        engine = make_engine(url)
        try:
            migrate.upgrade(url, engine=engine)
        except BaseException:
            engine.dispose()
            raise
        return History(url, engine=engine)

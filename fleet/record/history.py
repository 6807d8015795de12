"""The compliance history: every sweep, every verdict, every remediation job and ARM write.

``History(url)`` opens (and, when older, upgrades: ``fleet.record.migrate``) a SQLAlchemy
database: a SQLite file by default (``Settings.effective_database_url``), PostgreSQL
(``postgresql+psycopg://...``) for shared installations. It is the one entry point callers use;
its parts live in one module each and share its engine: recording sweeps (``sweep_recording``),
reading them back and retention (``sweep_reading``), jobs and approvals (``jobs``), the audit
trail of ARM writes (``audit``), installation-wide controls (``controls``) and applied secret
fingerprints (``fingerprints``).
"""

from __future__ import annotations

from types import TracebackType

from fleet.record import migrate
from fleet.record.audit import AuditTrail
from fleet.record.controls import Controls
from fleet.record.db import ensure_sqlite_dir, make_engine, redacted
from fleet.record.fingerprints import AppliedFingerprints
from fleet.record.jobs import JobRecords
from fleet.record.sweep_reading import SweepReading
from fleet.record.sweep_recording import SweepRecording

__all__ = ["History"]


class History(SweepRecording, SweepReading, JobRecords, AuditTrail, Controls, AppliedFingerprints):
    """The history database. Thread-safe (a pooled engine); use as a context manager."""

    def __init__(self, url: str) -> None:
        self.url = url
        ensure_sqlite_dir(url)
        self._engine = make_engine(url)
        self._postgres = self._engine.dialect.name == "postgresql"
        try:
            migrate.upgrade(url, engine=self._engine)
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

"""What the history database raises: a reference that names nothing, a duplicate, a schema at
the wrong revision.

Callers catch these by class (the CLI maps them to exit codes), so each says in its message what
the user can do about it. The module imports nothing, so catching them costs no database driver.
"""

from __future__ import annotations


class SweepNotFound(LookupError):
    """A sweep reference (``latest``, an id or a prefix) names no recorded sweep."""


class NoSweeps(SweepNotFound):
    """The database holds no finished sweep at all."""


class AmbiguousSweep(SweepNotFound):
    """A prefix matches more than one sweep."""


class DuplicateSweep(ValueError):
    """A sweep with this id is already recorded."""


class JobNotFound(LookupError):
    """A job reference (``latest``, an id or a unique prefix) names no recorded job."""


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer fleet than this one."""


class SchemaOutOfDate(RuntimeError):
    """The database is empty or at an older schema revision than this fleet needs.

    ``History`` never migrates: ``fleet db upgrade`` does (or ``open_history`` with
    ``FLEET_DATABASE_AUTO_UPGRADE`` on).
    """

    def __init__(self, database: str, found: str | None, needed: str) -> None:
        at = f"is at schema revision {found}" if found else "holds no schema yet"
        super().__init__(
            f"the history database {database} {at}; this fleet needs revision {needed}: "
            "run: fleet db upgrade"
        )
        #: The database's URL without its password.
        self.database = database
        self.found = found
        self.needed = needed

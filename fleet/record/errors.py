"""What the history database raises: a reference that names nothing, a duplicate, a schema
newer than this fleet.

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

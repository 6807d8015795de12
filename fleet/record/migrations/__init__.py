"""Alembic migrations of the history database, run by ``fleet.record.migrate``."""

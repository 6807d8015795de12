"""Alembic migrations of the history database, run by ``fleet.store.migrate`` on open."""

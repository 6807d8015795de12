"""Tests of the history store (SQLite and PostgreSQL) and its migrations."""

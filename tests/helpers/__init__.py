"""Helpers shared by tests of several folders (each module says what it is for)."""

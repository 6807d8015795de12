"""Tests of the offline ARM emulator (fleet.emulator)."""

"""The security tests reuse the fault suite's fleet and emulators (tests/faults/conftest.py)."""

from __future__ import annotations

from tests.faults.conftest import emulator_factory, fleet_snapshot

__all__ = ["emulator_factory", "fleet_snapshot"]

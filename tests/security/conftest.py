"""The security tests reuse the fault suite's fleet and emulators (tests/faults/conftest.py);
the Celery cases start real workers with tests/distributed/conftest.py's ``Workers``."""

from __future__ import annotations

from tests.faults.conftest import emulator_factory, fleet_snapshot

__all__ = ["emulator_factory", "fleet_snapshot"]

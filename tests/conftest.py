"""Project-wide fixtures: settings that point fleet at an emulator, isolated state directories.

Tests that need a real service (PostgreSQL, redis-server, chromium) skip locally when it is
missing but fail in CI (``FLEET_CI=1``), so a green CI run always means they ran.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from fleet.emulator.testing import RunningEmulator

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "policies"
IN_CI = os.environ.get("FLEET_CI") == "1"

#: ``pytest tests/fuzz --hypothesis-profile fuzz-long``: a long local fuzzing run (CI keeps the
#: bounded default of each test). Registered here, before hypothesis reads the option.
hypothesis_settings.register_profile("fuzz-long", max_examples=5000, deadline=None)


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a real service the test needs is missing."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


def waiting_job(env: dict[str, str], deadline: float) -> str:
    """The id of the remediation job waiting at an approval gate (waits for it)."""
    from fleet.core.errors import SchemaOutOfDate
    from fleet.record.history import History

    while time.monotonic() < deadline:
        try:
            with History(env["FLEET_DATABASE_URL"]) as history:
                for job in history.jobs(kind="remediation"):
                    if job["status"] == "awaiting-approval":
                        return str(job["id"])
        except SchemaOutOfDate:
            pass  # the job's process has not created the database yet
        time.sleep(0.2)
    raise AssertionError("no job reached its approval gate")


def emulator_env(emu: RunningEmulator, state_dir: Path, **extra: Any) -> dict[str, str]:
    """The FLEET_* environment that points the CLI at an emulator, with its own state dir."""
    env = {
        "FLEET_ARM_ENDPOINT": emu.endpoint,
        "FLEET_ARM_CA_BUNDLE": str(emu.ca_bundle),
        "FLEET_AUTH": "emulator",
        "FLEET_STATE_DIR": str(state_dir),
        "FLEET_DATABASE_URL": f"sqlite:///{state_dir / 'fleet.db'}",
        "FLEET_LRO_POLL_INTERVAL": "0",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def clean_fleet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No FLEET_* variable of the developer's shell leaks into a test; state goes to tmp."""
    for key in list(os.environ):
        if key.startswith("FLEET_") and key != "FLEET_CI":
            monkeypatch.delenv(key)
    monkeypatch.setenv("FLEET_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # a stray .env in the checkout must not apply either
    yield tmp_path


#: Folders whose tests time what real processes do (worker kills, restarts, stalls, 429 storms):
#: under ``pytest -n`` each folder runs on one worker, in order, so they never compete with each
#: other for the two cores of a CI machine; every other test is spread over the workers.
SERIAL_GROUPS = ("distributed", "faults", "security")
#: Tests that usually take more than a few seconds (``-m "not slow"`` leaves them out while
#: iterating; the full run, and CI, keep them).
SLOW_FOLDERS = ("distributed", "faults", "security")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        folder = parts[0] if len(parts) > 1 else ""
        if folder in SERIAL_GROUPS:
            item.add_marker(pytest.mark.xdist_group(folder))
        if folder in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)

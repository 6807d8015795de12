"""Where a job takes "now" from: the one clock of a process (``FLEET_CLOCK``).

Windows, freezes, AKS maintenance windows and schedules are judged against this clock and no
other, so a test can move time for every part of a job at once: with ``FLEET_CLOCK=emulator``
it is the emulator's admin clock (``GET /_emulator/clock`` on the loopback ARM endpoint, which
``POST /_emulator/clock`` moves forward), read at each call; otherwise the system's UTC time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import requests

from fleet.settings import Settings

Clock = Callable[[], datetime]


def system_now() -> datetime:
    return datetime.now(UTC)


class EmulatorClock:
    """The emulator's admin clock (loopback only: the settings refuse anything else)."""

    def __init__(self, settings: Settings) -> None:
        self._url = f"{settings.arm_endpoint}/_emulator/clock"
        self._verify: str | bool = settings.arm_ca_bundle or True
        self._http = requests.Session()
        self._http.trust_env = False

    def __call__(self) -> datetime:
        answer = self._http.get(self._url, verify=self._verify, timeout=10)
        answer.raise_for_status()
        moment = datetime.fromisoformat(str(answer.json()["now"]).replace("Z", "+00:00"))
        return moment.astimezone(UTC)


def make_clock(settings: Settings) -> Clock:
    """The clock ``FLEET_CLOCK`` asks for."""
    return EmulatorClock(settings) if settings.clock == "emulator" else system_now

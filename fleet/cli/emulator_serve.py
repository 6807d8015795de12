"""``fleet emulator serve``: run the ARM emulator on loopback over HTTPS."""

from __future__ import annotations

from fleet.cli.emulator_cmds import emulator_app  # noqa: F401

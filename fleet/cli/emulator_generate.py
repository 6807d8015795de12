"""``fleet emulator generate``: write a generated fleet snapshot."""

from __future__ import annotations

from fleet.cli.emulator_cmds import emulator_app  # noqa: F401

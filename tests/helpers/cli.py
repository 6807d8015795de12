"""Running ``fleet`` the way a user does: the argument lists the tests repeat, and the process.

Tests that need a real process (a signal, a kill, another terminal) start ``python -m fleet``
with ``fleet_process``; the others call the typer app in-process with these same arguments.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

FLEET_COMMAND = [sys.executable, "-m", "fleet"]


def remediate_args(policies: Path | str, *more: str) -> list[str]:
    """``fleet remediate`` of ``policies`` without questions, its report as JSON, then ``more``."""
    return ["remediate", "-p", str(policies), "--yes", "-o", "json", *more]


def fleet_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """``python -m fleet ARGS`` started in the repository, stdout and stderr piped as text."""
    return subprocess.Popen(
        [*FLEET_COMMAND, *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

"""The security tests reuse the fault suite's fleet and emulators (tests/faults/conftest.py),
and start real Celery workers the way an operator would."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.conftest import REPO
from tests.distributed.conftest import CELERY
from tests.faults.conftest import emulator_factory, fleet_snapshot

__all__ = ["emulator_factory", "fleet_snapshot", "start_worker"]


def start_worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``celery -A workers worker`` on every queue, in its own process; waits until ready."""
    cmd = [
        CELERY,
        "-A",
        "workers",
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        "8",
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return proc


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

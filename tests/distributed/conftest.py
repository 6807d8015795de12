"""Real Redis and real Celery worker processes for the distributed-engine tests.

Nothing is eager or in-process: ``redis-server`` runs as a subprocess on a free port (its own,
so it can be killed and restarted without touching the machine's Redis), and workers are
started exactly as an operator would, ``celery -A workers worker --pool threads``, in their
own processes, with the FLEET_* environment pointing at the emulator.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from fleet.emulator.testing import RunningEmulator
from tests.conftest import REPO, emulator_env, require

CELERY = str(Path(sys.executable).with_name("celery"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server subprocess that tests may stop, kill and restart on the same port."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: the hard way a machine dies (no warm shutdown, no acks)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Workers:
    """Starts worker processes for one test environment and stops them all at the end."""

    env: dict[str, str]
    workdir: Path
    started: list[Worker] = field(default_factory=list)

    def start(self, name: str, *, concurrency: int = 8, queues: str | None = None) -> Worker:
        log = self.workdir / f"{name}.log"
        cmd = [
            CELERY,
            "-A",
            "workers",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ]
        if queues:
            cmd += ["-Q", queues]
        env = {**os.environ, **self.env, "PYTHONPATH": str(REPO)}
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        worker = Worker(name, proc, log)
        self.started.append(worker)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n{log.read_text()[-3000:]}")
            if b" ready." in log.read_bytes():
                return worker
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} not ready:\n{log.read_text()[-3000:]}")

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


def distributed_env(
    emu: RunningEmulator, redis_url: str, state: Path, **extra: object
) -> dict[str, str]:
    return emulator_env(
        emu,
        state,
        FLEET_BROKER_URL=redis_url,
        FLEET_REDIS_URL=redis_url,
        FLEET_VISIBILITY_TIMEOUT=12,
        FLEET_BATCH_SIZE=5,
        **extra,
    )

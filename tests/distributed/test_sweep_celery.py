"""The Celery engine sweeps like the local engine: same verdicts, recorded the same way."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.conftest import POLICIES
from tests.distributed.conftest import RedisServer, Workers, distributed_env, free_port

CLUSTERS = 60


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    snapshot = generate(clusters=CLUSTERS, subscriptions=2, seed=21)
    with running_emulator(snapshot, throttle="off", retry_after=0) as emu:
        yield emu


def verdicts(report: dict[str, Any]) -> dict[str, Any]:
    return {
        c["id"].lower(): (
            c["state"],
            sorted((f["code"], f.get("policy"), f.get("path")) for f in c["findings"]),
        )
        for c in report["clusters"]
    }


def test_celery_sweep_gives_the_local_verdicts(
    emulator: RunningEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = distributed_env(emulator, redis_server.url, tmp_path)
    workers = Workers(env, tmp_path)
    metrics_port = free_port()
    try:
        workers.start("w1")
        workers.env = {**env, "FLEET_METRICS_PORT": str(metrics_port)}
        workers.start("w2")
        runner = CliRunner()
        celery = runner.invoke(
            app, ["sweep", "-p", str(POLICIES), "-o", "json", "--engine", "celery"], env=env
        )
        assert celery.exit_code == 0, celery.stderr + celery.stdout
        local = runner.invoke(app, ["sweep", "-p", str(POLICIES), "-o", "json"], env=env)
        assert local.exit_code == 0, local.stderr
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        metrics = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        workers.stop_all()
    remote, here = json.loads(celery.stdout), json.loads(local.stdout)
    assert remote["sweep"]["engine"] == "celery"
    assert len(remote["clusters"]) == CLUSTERS
    assert verdicts(remote) == verdicts(here)
    assert remote["summary"]["byState"] == here["summary"]["byState"]
    # the worker exposes what it did for Prometheus
    assert 'fleet_worker_arm_requests_total{op="reads",status="200"}' in metrics
    assert "fleet_worker_cluster_outcomes_total" in metrics
    # both workers took part
    logs = [w.log.read_text() for w in workers.started]
    assert all("fleet.sweep.judge" in text for text in logs), "a worker judged nothing"

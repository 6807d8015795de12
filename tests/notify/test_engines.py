"""Both engines announce the same events: a sweep, drift, a second sweep and a remediation job
that waits at an approval gate until its approval times out, once on the local engine and once
on Celery (a real redis-server, a real worker process), each against its own emulator holding
the same fleet, its own history database and its own webhook receiver.

What the receivers got is compared event by event: types, and data with ids left out (sweep
and job ids differ between any two runs, and so do times).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.conftest import emulator_env
from tests.distributed.conftest import RedisServer, Workers, distributed_env
from tests.distributed.test_parity import FAST, FLEET, policy_dir, remediate_args
from tests.notify.conftest import Receiver, serving

pytestmark = [pytest.mark.redis, pytest.mark.slow]

#: Data fields that name a run's own sweeps and jobs.
IDS = {"sweepId", "previousSweepId", "jobId", "approve", "more"}


def _notify(receiver: Receiver) -> dict[str, str]:
    return {
        "FLEET_NOTIFY_URLS": "env:FLEET_TEST_HOOK",
        "FLEET_TEST_HOOK": receiver.url,
        "FLEET_NOTIFY_BACKOFF_SECONDS": "0.2",
    }


@contextmanager
def engine_env(
    engine: str, emu: RunningEmulator, receiver: Receiver, tmp: Path, redis_server: RedisServer
) -> Iterator[dict[str, str]]:
    if engine == "local":
        yield emulator_env(emu, tmp / "state", **_notify(receiver))
        return
    redis_server.restart()  # a clean broker and job state for this run
    env = distributed_env(emu, redis_server.url, tmp / "state", **_notify(receiver))
    workers = Workers(env, tmp)
    try:
        workers.start(f"notify-{engine}", concurrency=8)
        yield env
    finally:
        workers.stop_all()


def drift_extensions(emu: RunningEmulator, report: dict[str, Any], count: int) -> None:
    """Turn multi-tenancy off in the extension of ``count`` reachable clusters."""
    reachable = {
        c["id"].lower()
        for c in report["clusters"]
        if not any(f["code"].startswith("CLUSTER_") for f in c["findings"])
    }
    changed = 0
    for resource in emu.admin.snapshot()["resources"]:
        cluster = resource["id"].split("/providers/Microsoft.KubernetesConfiguration/")[0]
        if resource["type"].endswith("/extensions") and cluster.lower() in reachable:
            resource["properties"]["configurationSettings"]["multiTenancy.enforce"] = "false"
            emu.admin.put_resource(resource)
            changed += 1
            if changed == count:
                return
    raise AssertionError("too few reachable clusters with an extension")


def story(engine: str, tmp: Path, redis_server: RedisServer) -> list[dict[str, Any]]:
    """Sweep, drift, sweep, remediate (the approval of wave 2 times out); what was announced."""
    tmp.mkdir(parents=True)
    policies = policy_dir(tmp, approval=True, budget="100%", max_concurrency=4)
    runner = CliRunner()
    with serving() as receiver, running_emulator(FLEET, **FAST) as emu:
        with engine_env(engine, emu, receiver, tmp, redis_server) as env:
            sweep = ["sweep", "-p", str(policies), "-o", "json", "--engine", engine]
            first = runner.invoke(app, sweep, env=env)
            assert first.exit_code in (0, 2), first.stderr
            drift_extensions(emu, json.loads(first.stdout), 2)
            second = runner.invoke(app, sweep, env=env)
            assert second.exit_code in (0, 2), second.stderr
            job = runner.invoke(app, remediate_args(policies, engine, "3"), env=env)
            assert job.exit_code == 1, job.stderr  # stopped: the approval timed out
        return receiver.events()


def comparable(event: dict[str, Any]) -> tuple[str, str]:
    data = {k: v for k, v in event["data"].items() if k not in IDS}
    return event["type"], json.dumps(data, sort_keys=True)


def test_both_engines_announce_the_same_events(tmp_path: Path, redis_server: RedisServer) -> None:
    local = story("local", tmp_path / "local", redis_server)
    celery = story("celery", tmp_path / "celery", redis_server)
    assert [e["type"] for e in local] == [
        "fleet.sweep.drift",
        "fleet.job.awaiting_approval",
        "fleet.job.finished",
    ]
    [drift] = [e for e in local if e["type"] == "fleet.sweep.drift"]
    assert {f["code"] for f in drift["data"]["findings"]} == {"EXTENSION_DRIFT"}
    assert len({f["clusterId"] for f in drift["data"]["findings"]}) == 2
    finished = local[-1]["data"]
    assert (finished["status"], finished["stopKind"]) == ("stopped", "approval-timeout")
    assert [comparable(e) for e in celery] == [comparable(e) for e in local]

"""Extension version promotion on Celery: the same waves, holds and halts as on the local engine.

Real redis-server and worker processes; the CLI submits ``fleet remediate --engine celery`` jobs
whose start task prepares them with the one ``fleet.jobs.preparing.prepare`` (where promotion
decides each cluster's version) and whose cluster tasks write the pinned version. The same
scenario runs on the local engine against a twin emulator, step by step, and every step must
end with the same versions on ARM and the same job report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests import promotion_fleet as pf
from tests.conftest import emulator_env
from tests.distributed.conftest import RedisServer, Workers, distributed_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]

FAST = {"retry_after": 0, "lro_polls": 1, "reconcile_seconds": 0, "throttle": "off"}


def _at(emu: RunningEmulator, hours: float) -> None:
    pf.at(emu.admin, hours)


def _scenario(
    emu: RunningEmulator, env: dict[str, str], policies: Path, engine: str
) -> list[tuple[dict[str, str | None], list[tuple[str, str, str | None]]]]:
    """Pin, publish to westeurope, move the canary, break it, soak, heal, move the next wave:
    after each job, the versions on ARM and (cluster, status, reason) of the job report."""

    def remediate() -> tuple[dict[str, str | None], list[tuple[str, str, str | None]]]:
        args = ["remediate", "-p", str(policies), "--yes", "-o", "json", "--engine", engine]
        result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        job = json.loads(result.stdout)
        assert job["job"]["engine"] == engine
        report = sorted((c["name"], c["status"], c.get("reason")) for c in job["clusters"])
        found = pf.versions(emu.admin.snapshot())
        assert all(auto is False for _, auto in found.values())
        return {n: v for n, (v, _) in found.items()}, report

    def canary_config(make: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        emu.admin.put_resource(make(pf.flux_config(emu.admin.snapshot(), "aks-we-0")))

    _at(emu, 0)
    results = [remediate()]  # promotion turned on: every cluster pinned where it is
    _at(emu, 1)
    emu.admin.publish_release(pf.NEW, ["westeurope"])
    results.append(remediate())  # the canary moves
    canary_config(pf.failing)
    _at(emu, 26)
    results.append(remediate())  # soaked, but failing: the early wave is held
    canary_config(pf.healthy)
    _at(emu, 27)
    results.append(remediate())  # healthy again: the early wave moves
    return results


def test_promotion_on_celery_matches_the_local_engine(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "promoted.yaml").write_text(pf.POLICY)
    with running_emulator(pf.snapshot(), **FAST) as emu:
        env = distributed_env(emu, redis_server.url, tmp_path / "celery", FLEET_CLOCK="emulator")
        workers = Workers(env, tmp_path)
        try:
            workers.start("promote", concurrency=4)
            remote = _scenario(emu, env, policies, "celery")
        finally:
            workers.stop_all()
    with running_emulator(pf.snapshot(), **FAST) as twin:
        local_env = emulator_env(twin, tmp_path / "local", FLEET_CLOCK="emulator")
        local = _scenario(twin, local_env, policies, "local")

    on_new = [{n for n, v in versions.items() if v == pf.NEW} for versions, _ in remote]
    assert on_new == [set(), {"aks-we-0"}, {"aks-we-0"}, {"aks-we-0", "aks-we-1"}]
    halted: Any = {name: reason for name, _, reason in remote[2][1]}
    assert "halted: aks-we-0 (wave canary) shows FLUX_CONFIG_NONCOMPLIANT" in halted["aks-we-1"]
    assert remote == local

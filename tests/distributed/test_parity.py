"""One job, two engines: the same scenario ends the same way on the local engine and on Celery.

Each scenario runs ``fleet remediate`` as a separate process, once with ``--engine local`` and
once with ``--engine celery`` (a real redis-server, a real worker process), each against its own
emulator holding the same generated fleet and its own history database. A *director* acts on
the job while it waits at the approval gate of its second wave, exactly as a person would:
nothing (the approval times out), the kill switch, or deleting a secret file and approving; one
scenario closes some AKS clusters' maintenance windows on the emulated clock (they are deferred).
Then the two runs are compared field by field: exit code, the job report (status, stop kind and
message, counters, waves, every cluster's status, category, reason and writes), the history's
job row and its ``job_clusters`` rows, and the audit trail of ARM writes. Only what must differ
is left out: ids, timestamps, the engine's name and ARM's correlation ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from fleet.record.history import History
from tests.comparing import comparable, difference
from tests.conftest import REPO, emulator_env, waiting_job
from tests.distributed.conftest import RedisServer, Workers, distributed_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]

FLEET = generate(clusters=14, subscriptions=1, seed=23)
FAST = {"throttle": "off", "retry_after": 0, "lro_polls": 1, "reconcile_seconds": 0}

POLICY = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: parity
spec:
  mode: enforce
  priority: 100
  targets:
    subscriptions: ["*"]
  extension:
    name: flux
    autoUpgradeMinorVersion: true
    releaseTrain: Stable
    configurationSettings:
      multiTenancy.enforce: "true"
  fluxConfigurations:
    - name: parity-apps
      scope: cluster
      namespace: parity-apps
      gitRepository:
        url: https://github.com/fleet-examples/parity-apps
        repositoryRef: {branch: main}
        httpsUser: git
      kustomizations:
        apps: {path: ./apps, prune: true}
      configurationProtectedSettings:
        httpsKey: {fromFile: TOKEN}
  remediation:
    rollout:
      waves:
        - {name: canary, percent: 40}
        - {name: rest, percent: 100, approval: APPROVAL}
      maxConcurrency: MAXC
      failureBudget: BUDGET
"""


def policy_dir(
    tmp: Path,
    *,
    approval: bool,
    budget: str,
    max_concurrency: int,
    token: Path | None = None,
    respect: bool = False,
) -> Path:
    """The policy of a run in ``tmp``; ``token`` is the secret file it references (the same
    path for both engines' runs, so that both run the very same policy revision)."""
    folder = tmp / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    token = token or tmp / "git-token"
    token.write_text("parity-token-0123456789\n")
    text = (
        POLICY.replace("TOKEN", str(token))
        .replace("APPROVAL", "true" if approval else "false")
        .replace("BUDGET", budget)
        .replace("MAXC", str(max_concurrency))
    )
    if respect:
        text = text.replace("  remediation:\n", "  remediation:\n    respectAksMaintenance: true\n")
    (folder / "parity.yaml").write_text(text)
    return folder


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


Director = Callable[[dict[str, str], Path], None]


def nothing(env: dict[str, str], tmp: Path) -> None:
    """Leave the approval unanswered (it times out)."""


def kill_switch(env: dict[str, str], tmp: Path) -> None:
    waiting_job(env, time.monotonic() + 90)
    assert cli(["jobs", "kill-switch", "on", "-r", "parity"], env).returncode == 0


def lose_the_secret_then_approve(env: dict[str, str], tmp: Path) -> None:
    job = waiting_job(env, time.monotonic() + 90)
    (tmp.parent / "git-token").unlink()
    approved = cli(["jobs", "approve", job], env)
    assert approved.returncode == 0, approved.stderr


def closed_maintenance(emu: RunningEmulator) -> None:
    """A Monday on the emulated clock; two AKS clusters' windows open on Saturdays only."""
    emu.admin.set_clock("2027-03-01T12:00:00Z")
    aks = sorted(
        r["id"]
        for r in FLEET["resources"]
        if r["type"] == "Microsoft.ContainerService/managedClusters"
    )
    for cluster in aks[:2]:
        emu.admin.put_resource(
            {
                "id": f"{cluster}/maintenanceConfigurations/aksManagedAutoUpgradeSchedule",
                "name": "aksManagedAutoUpgradeSchedule",
                "type": "Microsoft.ContainerService/managedClusters/maintenanceConfigurations",
                "properties": {
                    "maintenanceWindow": {
                        "schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Saturday"}},
                        "durationHours": 4,
                        "startTime": "02:00",
                    }
                },
            }
        )


SCENARIOS: dict[str, dict[str, Any]] = {
    "success": {"approval": False, "budget": "100%", "max_concurrency": 4, "director": None},
    "budget": {
        "approval": False,
        "budget": "0",
        "max_concurrency": 1,
        "director": None,
        "fault": {"action": "lro_fail", "method": "PUT", "count": None},
    },
    "kill-switch": {
        "approval": True,
        "budget": "100%",
        "max_concurrency": 4,
        "director": kill_switch,
    },
    "approval-timeout": {
        "approval": True,
        "budget": "100%",
        "max_concurrency": 4,
        "director": nothing,
        "timeout": "3",
    },
    "secret-missing": {
        "approval": True,
        "budget": "100%",
        "max_concurrency": 4,
        "director": lose_the_secret_then_approve,
    },
    "aks-maintenance": {
        "approval": False,
        "budget": "0",
        "max_concurrency": 4,
        "director": None,
        "respect": True,
        "setup": closed_maintenance,
    },
}


def remediate_args(policies: Path, engine: str, approval_timeout: str) -> list[str]:
    """``fleet remediate`` of the policies without questions, its report as JSON."""
    return [
        "remediate",
        "-p",
        str(policies),
        "--yes",
        "-o",
        "json",
        "--engine",
        engine,
        "--approval-timeout",
        approval_timeout,
    ]


@contextmanager
def engine_env(
    engine: str, tmp: Path, redis_server: RedisServer, scenario: dict[str, Any]
) -> Iterator[dict[str, str]]:
    with running_emulator(FLEET, **FAST) as emu:
        if scenario.get("fault"):
            emu.admin.add_fault(**scenario["fault"])
        extra = {}
        if scenario.get("setup"):
            scenario["setup"](emu)
            extra["FLEET_CLOCK"] = "emulator"
        if engine == "local":
            yield emulator_env(emu, tmp / "state", **extra)
            return
        redis_server.restart()  # a clean broker and job state for this run
        env = distributed_env(emu, redis_server.url, tmp / "state", **extra)
        workers = Workers(env, tmp)
        try:
            workers.start(f"parity-{tmp.name}", concurrency=8)
            yield env
        finally:
            workers.stop_all()


def run(
    engine: str, tmp: Path, redis_server: RedisServer, scenario: dict[str, Any]
) -> dict[str, Any]:
    tmp.mkdir(parents=True)
    policies = policy_dir(
        tmp,
        approval=scenario["approval"],
        budget=scenario["budget"],
        max_concurrency=scenario["max_concurrency"],
        token=tmp.parent / "git-token",
        respect=bool(scenario.get("respect")),
    )
    args = remediate_args(policies, engine, scenario.get("timeout", "90"))
    with engine_env(engine, tmp, redis_server, scenario) as env:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleet", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        director: Director | None = scenario["director"]
        try:
            if director is not None:
                director(env, tmp)
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
        cli(["jobs", "kill-switch", "off"], env)
        report = json.loads(out) if out.strip() else {}
        job_id = report.get("job", {}).get("id")
        assert job_id, err
        with History(env["FLEET_DATABASE_URL"]) as history:
            job = history.get_job(job_id)
            rows = history.job_clusters(job_id)
            writes = history.writes(job_id)
    return {
        "exit": proc.returncode,
        "report": report,
        "job": job,
        "rows": rows,
        "writes": writes,
        "stderr": err,
    }


EXPECTED = {
    "success": (0, "succeeded", None),
    "budget": (1, "stopped", "failure-budget"),
    "kill-switch": (130, "cancelled", "kill-switch"),
    "approval-timeout": (1, "stopped", "approval-timeout"),
    "secret-missing": (0, "completed", None),
    "aks-maintenance": (0, "completed", None),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_same_job_ends_the_same_on_both_engines(
    name: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    scenario = SCENARIOS[name]
    local = run("local", tmp_path / "local", redis_server, scenario)
    celery = run("celery", tmp_path / "celery", redis_server, scenario)
    assert local["report"]["job"]["engine"] == "local"
    assert celery["report"]["job"]["engine"] == "celery"
    code, status, kind = EXPECTED[name]
    assert (local["exit"], local["report"]["job"]["status"]) == (code, status), local["stderr"]
    assert local["report"]["job"]["stopKind"] == kind
    mine, theirs = comparable(local), comparable(celery)
    for field in mine:  # one field at a time, so a failure names it (and what differs)
        assert theirs[field] == mine[field], (field, difference(mine[field], theirs[field]))
    categories = {c["category"] for c in local["report"]["clusters"]}
    if name == "secret-missing":
        assert "secret" in categories  # the rest wave failed at its write, not earlier
    if name == "aks-maintenance":
        assert "aks-maintenance" in categories  # deferred, and (budget 0) never a failure
        assert local["report"]["summary"]["deferred"] == 2
    if kind is not None:
        assert kind in categories  # the clusters it never reached say why

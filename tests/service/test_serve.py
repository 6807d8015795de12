"""``fleet serve`` as a process: its JSON line, the dev issuer (loopback only), a start-up
without an issuer refused, and a restart that leaves a running job resumable."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from fleet.emulator.testing import running_emulator
from fleet.record.history import History
from tests.conftest import REPO, emulator_env
from tests.helpers.cli import FLEET_COMMAND, fleet_process
from tests.service.conftest import APPROVER, FAST, FLEET, OPERATOR, policy_dir
from tests.service.issuer import AUDIENCE, LocalIssuer

pytestmark = pytest.mark.slow


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    return {**env, **extra}


@contextmanager
def fleet_serve(
    args: list[str], env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = fleet_process(["serve", *args], env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield json.loads(line)["url"], proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--dev", "--host", "0.0.0.0"], "loopback"),  # the dev issuer is for loopback only
        ([], "FLEET_API_AUDIENCE"),  # without an issuer the server does not start
    ],
    ids=["dev-off-loopback", "no-issuer"],
)
def test_a_start_up_it_must_refuse_exits_2_with_the_reason(
    args: list[str], reason: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [*FLEET_COMMAND, "serve", *args],
        env=_env({"FLEET_STATE_DIR": str(tmp_path)}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and reason in result.stderr


def test_dev_serves_demo_tokens_on_loopback(tmp_path: Path) -> None:
    with fleet_serve(["--dev"], _env({"FLEET_STATE_DIR": str(tmp_path)})) as (url, proc):
        assert url.startswith("http://127.0.0.1:")
        config = requests.get(f"{url}/console/config.json", timeout=10).json()
        assert config["mode"] == "dev" and len(config["users"]) == 5
        token = requests.post(f"{url}/dev/token", json={"user": "approver"}, timeout=10).json()
        me = requests.get(
            f"{url}/api/v1/me",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=10,
        ).json()
        assert me["name"] == "Ada Approver" and me["roles"] == ["Fleet.Approver"]
        assert requests.get(f"{url}/api/v1/me", timeout=10).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_a_restart_leaves_a_job_resumable(tmp_path: Path) -> None:
    issuer = LocalIssuer()
    try:
        with running_emulator(copy.deepcopy(FLEET), **FAST) as emu:
            policies = policy_dir(tmp_path, tmp_path / "git-token")
            env = _env(
                {
                    **emulator_env(emu, tmp_path / "state"),
                    "FLEET_API_ISSUER": issuer.issuer,
                    "FLEET_API_JWKS_URL": issuer.jwks_url,
                    "FLEET_API_AUDIENCE": AUDIENCE,
                    "FLEET_POLICIES": str(policies),
                }
            )
            operator = {"Authorization": f"Bearer {issuer.token('oid-op', [OPERATOR])}"}
            with fleet_serve([], env) as (url, proc):
                job = requests.post(f"{url}/api/v1/jobs", json={}, headers=operator, timeout=10)
                job_id = job.json()["id"]
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    view = requests.get(f"{url}/api/v1/jobs/{job_id}", headers=operator, timeout=10)
                    if view.status_code == 200 and view.json().get("waitingFor") == "rest":
                        break
                    time.sleep(0.2)
                proc.kill()  # the server dies while its job waits for approval
                proc.wait(10)
            with History(env["FLEET_DATABASE_URL"]) as history:
                assert history.get_job(job_id)["status"] == "awaiting-approval"  # type: ignore[index]
                # time passes: the dead server's heartbeat goes stale
                history.update_job(job_id, now=datetime.now(UTC) - timedelta(minutes=5))
            with fleet_serve([], env) as (url, _):
                resumed = requests.post(
                    f"{url}/api/v1/jobs/{job_id}/resume", json={}, headers=operator, timeout=10
                )
                assert resumed.status_code == 202, resumed.text
                for who in ("oid-a", "oid-b"):
                    approver = {"Authorization": f"Bearer {issuer.token(who, [APPROVER])}"}
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        answer = requests.post(
                            f"{url}/api/v1/jobs/{job_id}/approve",
                            json={"wave": "rest"},
                            headers=approver,
                            timeout=10,
                        )
                        if answer.status_code == 200:
                            break
                        time.sleep(0.2)
                deadline = time.monotonic() + 90
                status = ""
                while time.monotonic() < deadline:
                    view = requests.get(f"{url}/api/v1/jobs/{job_id}", headers=operator, timeout=10)
                    status = view.json()["job"]["status"]
                    if status in ("succeeded", "completed", "failed", "stopped"):
                        break
                    time.sleep(0.3)
                assert status == "succeeded", view.json()
                events = requests.get(
                    f"{url}/api/v1/audit?jobId={job_id}", headers=operator, timeout=10
                ).json()["events"]
                assert [e["action"] for e in reversed(events)] == [
                    "job.start",
                    "job.resume",
                    "job.approve",
                    "job.approve",
                ]
    finally:
        issuer.close()

"""Windows, freezes and AKS maintenance honoured by remediation jobs, on the emulated clock.

Each test sets the emulator's clock (``FLEET_CLOCK=emulator``: the job's "now" too), runs the
real ``fleet remediate`` / ``fleet plan`` against the emulator, and reads what ARM received.
The failure budget is 0 throughout: a deferred cluster counting as a failure would stop the
job, so a job that completes with deferred clusters proves they are never counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REPO, waiting_job
from tests.enforce.conftest import (
    aks_clusters,
    as_json,
    children,
    cli,
    env_of,
    put_maintenance,
    write_policy,
)

FREEZE = """\
    freezes:
      - {start: 2027-01-01, end: 2027-01-10, reason: new-year change freeze}
"""
WINDOW = """\
    windows:
      - {name: nightly, cron: "0 2 * * *", duration: PT2H, timeZone: Europe/Berlin}
"""


def _writes(emu: Any) -> list[dict[str, Any]]:
    return [r for r in emu.admin.requests() if r["method"] in ("PUT", "PATCH", "DELETE")]


def test_a_freeze_defers_every_cluster_and_a_retry_after_it_writes_them(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    policies = write_policy(tmp_path, FREEZE)
    with start() as emu:
        env = env_of(emu, tmp_path)
        emu.admin.set_clock("2027-01-05T12:00:00Z")
        frozen = cli(["remediate", "-p", str(policies), "--yes", "-o", "json"], env)
        assert frozen.exit_code == 0, frozen.output
        job = as_json(frozen)
        assert job["job"]["status"] == "completed"  # not stopped: budget 0, no failure
        deferred = [c for c in job["clusters"] if c["status"] == "deferred"]
        assert deferred and job["summary"]["deferred"] == len(deferred)
        assert job["summary"]["failed"] == 0 and job["summary"]["writes"] == 0
        assert {c["category"] for c in deferred} == {"freeze"}
        assert {c["nextWindow"] for c in deferred} == {"2027-01-11T00:00:00+00:00"}
        assert all("new-year change freeze" in c["reason"] for c in deferred)
        assert {c["id"] for c in deferred} <= set(job["retry"])
        assert not _writes(emu)

        emu.admin.set_clock("2027-01-11T01:00:00Z")
        retried = cli(
            ["remediate", "-p", str(policies), "--retry", job["job"]["id"], "--yes", "-o", "json"],
            env,
        )
        assert retried.exit_code == 0, retried.output
        statuses = {c["status"] for c in as_json(retried)["clusters"]}
        assert "fixed" in statuses and "deferred" not in statuses
        assert _writes(emu)


def test_the_plan_shows_the_next_window_and_a_job_writes_inside_it(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    policies = write_policy(tmp_path, WINDOW)
    with start() as emu:
        env = env_of(emu, tmp_path)
        emu.admin.set_clock("2027-02-01T12:00:00Z")  # Monday noon UTC: outside the window
        plan = as_json(cli(["plan", "-p", str(policies), "-o", "json"], env))
        windows = [c["window"] for c in plan["clusters"] if c.get("actions")]
        assert windows and all(w["open"] is False for w in windows)
        # 02:00 in Berlin (CET) is 01:00 UTC the next day.
        assert {w["nextWindow"] for w in windows} == {"2027-02-02T01:00:00Z"}
        dry = as_json(cli(["remediate", "-p", str(policies), "--dry-run", "-o", "json"], env))
        assert {c["window"]["nextWindow"] for c in dry["clusters"] if c.get("window")} == {
            "2027-02-02T01:00:00Z"
        }
        outside = as_json(cli(["remediate", "-p", str(policies), "--yes", "-o", "json"], env))
        assert {c["category"] for c in outside["clusters"] if c["status"] == "deferred"} == {
            "window"
        }
        assert not _writes(emu)

        emu.admin.set_clock("2027-02-02T01:30:00Z")
        inside = cli(["remediate", "-p", str(policies), "--yes", "-o", "json"], env)
        assert inside.exit_code == 0, inside.output
        statuses = {c["status"] for c in as_json(inside)["clusters"]}
        assert "deferred" not in statuses and "fixed" in statuses


def test_an_aks_cluster_outside_its_maintenance_window_is_deferred(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    policies = write_policy(tmp_path, "    respectAksMaintenance: true\n")
    with start() as emu:
        env = env_of(emu, tmp_path)
        emu.admin.set_clock("2027-03-01T12:00:00Z")  # a Monday
        closed, open_now = (c["id"] for c in aks_clusters(emu)[:2])
        saturday = {
            "maintenanceWindow": {
                "schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Saturday"}},
                "durationHours": 4,
                "startTime": "02:00",
                "utcOffset": "+00:00",
            }
        }
        put_maintenance(emu, closed, "aksManagedAutoUpgradeSchedule", saturday)
        monday = {"timeInWeek": [{"day": "Monday", "hourSlots": [11, 12, 13]}]}
        put_maintenance(emu, open_now, "default", monday)
        job = as_json(cli(["remediate", "-p", str(policies), "--yes", "-o", "json"], env))
        by_id = {c["id"].lower(): c for c in job["clusters"]}
        waiting = by_id[closed.lower()]
        assert (waiting["status"], waiting["category"]) == ("deferred", "aks-maintenance")
        assert waiting["nextWindow"] == "2027-03-06T02:00:00+00:00"
        assert by_id[open_now.lower()]["status"] == "fixed"
        assert "fluxconfigurations/auto-apps" not in children(emu, closed)
        assert "fluxconfigurations/auto-apps" in children(emu, open_now)


def test_a_window_that_closes_while_a_wave_waits_defers_the_next_wave(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    """The gate is asked again right before each write: a window open when the job was
    prepared but closed when its second wave is approved defers that wave's clusters."""
    policies = write_policy(
        tmp_path,
        '    windows:\n      - {cron: "0 10 * * *", duration: PT1H}\n'
        "    rollout:\n      waves:\n        - {name: first, percent: 40}\n"
        "        - {name: second, percent: 100, approval: true}\n      failureBudget: 0\n",
    )
    text = (policies / "auto-apps.yaml").read_text()
    (policies / "auto-apps.yaml").write_text(
        text.replace("    rollout:\n      failureBudget: 0\n", "", 1)
    )
    with start() as emu:
        env = env_of(emu, tmp_path)
        emu.admin.set_clock("2027-05-03T10:05:00Z")
        args = ["remediate", "-p", str(policies), "--yes", "-o", "json", "--approval-timeout", "60"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleet", *args],
            env={**os.environ, **env},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            job_id = waiting_job(env, time.monotonic() + 60)
            emu.admin.set_clock("2027-05-03T11:30:00Z")  # the window closed at 11:00
            approved = cli(["jobs", "approve", job_id], env)
            assert approved.exit_code == 0, approved.output
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        job = json.loads(out)
        waves = {c["wave"] for c in job["clusters"] if c["status"] == "deferred"}
        assert waves == {"second"}
        first = [c for c in job["clusters"] if c["wave"] == "first"]
        assert first and {c["status"] for c in first} <= {"fixed", "retry", "skipped"}
        nexts = {c["nextWindow"] for c in job["clusters"] if c["status"] == "deferred"}
        assert nexts == {"2027-05-04T10:00:00+00:00"}

"""Waves in action: the failure budget stops a job, approvals gate a wave (from another
process, as from another terminal), approvals time out, and a job can be cancelled."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from fleet.record.history import History, open_history
from tests.conftest import REPO
from tests.helpers.cli import FLEET_COMMAND, remediate_args
from tests.remediate.conftest import (
    clusters,
    env_for,
    kinds,
    policy_dir,
    report,
    run,
    with_rollout,
    writes_by_cluster,
)

#: Defect kinds whose clusters certainly get a write from the example policies.
WRITTEN_KINDS = (
    "extension_drift",
    "extension_failed",
    "extension_missing",
    "branch_drift",
    "depends_on_drift",
    "flux_config_missing",
    "extra_kustomization",
)


def _fleet(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``fleet ...`` in its own process, as from another terminal."""
    return subprocess.run(
        [*FLEET_COMMAND, *args],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_scripted_failures_above_the_budget_stop_the_job_after_their_wave(
    start: Any, snapshot: dict[str, Any], tmp_path: Path
) -> None:
    facts = clusters(snapshot)
    first = sorted(
        (c for c, k in kinds(snapshot).items() if k in WRITTEN_KINDS), key=lambda c: facts[c].name
    )[:3]
    names = ", ".join(f'"{facts[c].name}"' for c in first)
    rollout = (
        "    rollout:\n      waves:\n"
        f"        - {{name: first, selector: {{names: [{names}]}}}}\n"
        "        - {name: everything, percent: 100}\n"
        "      maxConcurrency: 10\n      failureBudget: 1\n"
    )
    policies = policy_dir(tmp_path, {"baseline.yaml": with_rollout(rollout)})
    with start() as emu:
        for cid in first[:2]:  # two of the first wave's three clusters fail: 2 > 1
            emu.admin.add_fault(
                action="lro_fail",
                method="PUT",
                pathPrefix=facts[cid].id,
                code="InjectedFailure",
                message="the canary broke",
            )
        env = env_for(emu, tmp_path / "state")
        result = run(remediate_args(policies), env)
        assert result.exit_code == 1, result.stderr
        job = report(result)
        assert job["job"]["status"] == "stopped"
        assert "failure budget exceeded in wave 'first'" in job["job"]["stopReason"]
        by_id = {c["id"].lower(): c for c in job["clusters"]}
        assert [by_id[c]["status"] for c in first[:2]] == ["failed", "failed"]
        assert all("InjectedFailure" in by_id[c]["reason"] for c in first[:2])
        assert by_id[first[2]]["status"] == "fixed"
        # nothing after the wave: the request log holds writes to the first wave only
        assert set(writes_by_cluster(emu)) <= set(first)
        later = [c for c in job["clusters"] if c["wave"] == "everything"]
        assert later and {c["status"] for c in later} == {"not-started"}
        assert set(job["retry"]) >= {c["id"] for c in later} | {by_id[c]["id"] for c in first[:2]}
        # ARM's error code and message are in the audit trail
        shown = report(run(["jobs", "show", job["job"]["id"], "-o", "json"], env))
        failed = [w for w in shown["writes"] if w["outcome"] == "failed"]
        assert {(w["errorCode"], w["errorMessage"]) for w in failed} == {
            ("InjectedFailure", "the canary broke")
        }


def test_an_lro_failure_rate_above_the_budget_stops_after_the_first_wave(
    start: Any, tmp_path: Path
) -> None:
    rollout = (
        "    rollout:\n      waves:\n        - {name: first, percent: 40}\n"
        "        - {name: second, percent: 100}\n      failureBudget: 10%\n"
    )
    policies = policy_dir(tmp_path, {"baseline.yaml": with_rollout(rollout)})
    with start(lro_fail_rate=1.0, seed=3) as emu:
        env = env_for(emu, tmp_path / "state")
        result = run(remediate_args(policies), env)
        assert result.exit_code == 1, result.stderr
        job = report(result)
        first = {c["id"].lower() for c in job["clusters"] if c["wave"] == "first"}
        second = [c for c in job["clusters"] if c["wave"] == "second"]
        assert first and second
        assert set(writes_by_cluster(emu)) <= first
        assert {c["status"] for c in second} == {"not-started"}
        assert job["summary"]["failed"] >= 2 and job["summary"]["fixed"] == 0


APPROVAL = (
    "    rollout:\n      waves:\n"
    '        - {name: canary, selector: {tags: {ring: "0"}}}\n'
    "        - {name: broad, percent: 100, approval: true}\n      failureBudget: 5%\n"
)


def _wait_for(db: str, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with open_history(db, upgrade=True) as history:  # the job may not have created it yet
        while time.monotonic() < deadline:
            jobs = history.jobs(1)
            if jobs and jobs[0]["status"] == status:
                return jobs[0]
            time.sleep(0.1)
    raise AssertionError(f"no job reached {status} in {timeout}s")


class Waiting(NamedTuple):
    emu: Any
    env: dict[str, str]
    thread: threading.Thread
    box: list[Any]  # the CLI's result once the thread ends
    job: dict[str, Any]  # the job's record as it waits


def _in_thread(args: list[str], env: dict[str, str]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(run(args, env)), daemon=True)
    thread.start()
    return thread, box


def _finished(thread: threading.Thread, box: list[Any], *, exit_code: int) -> dict[str, Any]:
    """The report of the job run by ``_in_thread`` once it ends, which must exit ``exit_code``."""
    thread.join(60)
    [result] = box
    assert result.exit_code == exit_code, result.stderr
    return report(result)


@contextmanager
def _awaiting_approval(start: Any, tmp_path: Path) -> Iterator[Waiting]:
    """A job of the ``APPROVAL`` rollout, run in a thread, once it waits for its second wave."""
    policies = policy_dir(tmp_path, {"baseline.yaml": with_rollout(APPROVAL)})
    with start() as emu:
        env = env_for(emu, tmp_path / "state")
        thread, box = _in_thread(remediate_args(policies), env)
        yield Waiting(
            emu, env, thread, box, _wait_for(env["FLEET_DATABASE_URL"], "awaiting-approval")
        )


def test_a_wave_waits_for_approval_from_another_terminal(start: Any, tmp_path: Path) -> None:
    with _awaiting_approval(start, tmp_path) as (emu, env, thread, box, waiting):
        assert waiting["summary"]["progress"]["waitingFor"] == "broad"
        with History(env["FLEET_DATABASE_URL"]) as history:
            canary = {
                c["clusterId"].lower()
                for c in history.job_clusters(waiting["id"])
                if c["wave"] == "canary"
            }
        time.sleep(0.5)  # it really waits: nothing beyond the canary is written meanwhile
        assert set(writes_by_cluster(emu)) <= canary
        listing = _fleet(["jobs", "list"], env)
        assert "awaiting-approval" in listing.stdout and "broad" in listing.stdout
        approved = _fleet(["jobs", "approve", waiting["id"][:12]], env)
        assert approved.returncode == 0, approved.stderr
        assert f"approved wave broad of job {waiting['id']}" in approved.stderr
        job = _finished(thread, box, exit_code=0)
        assert job["job"]["status"] == "succeeded"
        assert {c["status"] for c in job["clusters"] if c["wave"] == "broad"} == {"fixed"}
        with History(env["FLEET_DATABASE_URL"]) as history:
            [approval] = history.get_job(waiting["id"])["approvals"]  # type: ignore[index]
        assert approval["wave"] == "broad" and approval["by"]
        again = _fleet(["jobs", "approve", waiting["id"]], env)
        assert again.returncode == 2 and "nothing to approve" in again.stderr


def test_an_unanswered_approval_times_out_cleanly(start: Any, tmp_path: Path) -> None:
    policies = policy_dir(tmp_path, {"baseline.yaml": with_rollout(APPROVAL)})
    with start() as emu:
        env = env_for(emu, tmp_path / "state")
        result = run(remediate_args(policies, "--approval-timeout", "0.5"), env)
        assert result.exit_code == 1, result.stderr
        job = report(result)
        assert job["job"]["status"] == "stopped"
        assert job["job"]["stopReason"] == "approval of wave 'broad' timed out after 0.5s"
        canary = {c["id"].lower() for c in job["clusters"] if c["wave"] == "canary"}
        broad = [c for c in job["clusters"] if c["wave"] == "broad"]
        assert {c["status"] for c in broad} == {"not-started"}
        assert set(writes_by_cluster(emu)) <= canary
        assert {c["id"] for c in broad} <= set(job["retry"])


def test_a_job_is_cancelled_from_another_terminal(start: Any, tmp_path: Path) -> None:
    with _awaiting_approval(start, tmp_path) as (_, env, thread, box, waiting):
        cancelled = _fleet(["jobs", "cancel", waiting["id"]], env)
        assert cancelled.returncode == 0, cancelled.stderr
        job = _finished(thread, box, exit_code=130)
        assert job["job"]["status"] == "cancelled"
        assert {c["status"] for c in job["clusters"] if c["wave"] == "broad"} == {"not-started"}
        assert _fleet(["jobs", "cancel", waiting["id"]], env).returncode == 2  # already over

"""A remediation started and approved through the API on the emulator fleet: separation of
duties on the way (the creator cannot approve, the wave needs two approvers, one of them
through ``fleet jobs approve --server``), the audit trail of it, and in the end the same report
and history as the same job run from the command line. No answer ever holds the secret."""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.apply.lifecycle import ENDED, JobStatus, exit_code
from fleet.cli import app
from fleet.emulator.testing import running_emulator
from fleet.record.history import History
from tests.comparing import comparable, difference
from tests.conftest import emulator_env
from tests.helpers.cli import fleet_process, remediate_args
from tests.service.conftest import APPROVER, FAST, FLEET, OPERATOR, SECRET, Served

pytestmark = pytest.mark.slow

CREATOR = "oid-creator"


def ended(view: dict[str, Any]) -> bool:
    return view["job"]["status"] in {s.value for s in ENDED}


def waiting(view: dict[str, Any]) -> bool:
    return view.get("waitingFor") == "rest"


@pytest.fixture(scope="module")
def through_the_api(served: Served) -> dict[str, Any]:
    """The job, run through the API; every answer on the way is kept (secrets check)."""
    answers: list[str] = []
    creator = served.issuer.token(CREATOR, [OPERATOR, APPROVER], name="Cleo Creator")
    alice = served.issuer.token("oid-alice", [APPROVER], name="Alice Approver")
    bob = served.issuer.token("oid-bob", [APPROVER], name="Bob Approver")

    started = served.call("POST", "/api/v1/jobs", token=creator, json={})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    view = served.wait_job(job_id, waiting)
    answers.append(json.dumps(view))
    mine = served.call("GET", f"/api/v1/jobs/{job_id}", token=creator).json()
    assert mine["can"] == {"approve": False, "cancel": True}  # the console hides the button
    assert served.call("GET", f"/api/v1/jobs/{job_id}", token=alice).json()["can"]["approve"]

    refused = served.call("POST", f"/api/v1/jobs/{job_id}/approve", token=creator, json={})
    first = served.call("POST", f"/api/v1/jobs/{job_id}/approve", token=alice, json={})
    again = served.call("POST", f"/api/v1/jobs/{job_id}/approve", token=alice, json={})
    time.sleep(1.5)  # the job looks at its approvals every half second: it must still wait
    still = served.call("GET", f"/api/v1/jobs/{job_id}", "viewer").json()
    cli = CliRunner().invoke(
        app,
        ["jobs", "approve", job_id[:14], "--server", served.url],
        env={"FLEET_API_TOKEN": bob},
    )
    final = served.wait_job(job_id, ended)
    report = served.call("GET", f"/api/v1/jobs/{job_id}/report", "viewer")
    writes = served.call("GET", f"/api/v1/jobs/{job_id}/writes", "viewer")
    audit = served.call("GET", f"/api/v1/audit?jobId={job_id}", "viewer")
    answers += [r.text for r in (refused, first, again, report, writes, audit)]
    answers.append(json.dumps(final))
    with served.history() as history:
        job = history.get_job(job_id)
        rows = history.job_clusters(job_id)
        recorded = history.writes(job_id)
    return {
        "id": job_id,
        "refused": refused,
        "first": first.json(),
        "again": again.json(),
        "still": still,
        "cli": cli,
        "final": final,
        "audit": audit.json()["events"],
        "answers": answers,
        "run": {
            "exit": exit_code(JobStatus(job["status"])),  # type: ignore[index]
            "report": report.json(),
            "job": job,
            "rows": rows,
            "writes": recorded,
        },
    }


def test_the_creator_cannot_approve_and_the_wave_needs_two_approvers(
    through_the_api: dict[str, Any],
) -> None:
    run = through_the_api
    assert run["refused"].status_code == 403
    assert "creator" in run["refused"].json()["error"]["message"]
    assert run["first"]["approval"] == {
        "job": run["id"],
        "wave": "rest",
        "approvals": 1,
        "required": 2,
        "approved": False,
    }
    assert run["again"]["approval"]["approvals"] == 1  # the same approver counts once
    assert run["still"]["job"]["status"] == "awaiting-approval"
    rest = next(w for w in run["still"]["waves"] if w["name"] == "rest")
    assert (rest["approvers"], rest["approved"]) == (2, False)
    assert [a["name"] for a in rest["approvals"]] == ["Alice Approver"]
    assert run["cli"].exit_code == 0, run["cli"].output
    assert "2 of 2" in run["cli"].output
    assert run["final"]["job"]["status"] == "succeeded"
    rest = next(w for w in run["final"]["waves"] if w["name"] == "rest")
    assert [a["name"] for a in rest["approvals"]] == ["Alice Approver", "Bob Approver"]


def test_the_audit_trail_has_who_did_what_and_when(through_the_api: dict[str, Any]) -> None:
    events = list(reversed(through_the_api["audit"]))
    assert [(e["action"], e["actor"]["oid"], e["actor"]["name"]) for e in events] == [
        ("job.start", CREATOR, "Cleo Creator"),
        ("job.approve", "oid-alice", "Alice Approver"),
        ("job.approve", "oid-bob", "Bob Approver"),
    ]
    assert all(e["actor"]["via"] == "api" and e["at"] for e in events)
    assert events[0]["detail"]["engine"] == "local"


def test_no_answer_holds_the_secret(through_the_api: dict[str, Any]) -> None:
    for text in through_the_api["answers"]:
        assert SECRET not in text


def test_the_audit_trail_is_append_only_through_the_api(served: Served) -> None:
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        answer = served.call(method, "/api/v1/audit", "admin", json={})
        assert answer.status_code == 405, (method, answer.text)
        assert answer.json()["error"]["code"] == "method-not-allowed"


def _cli_run(tmp: Path, policies: Path) -> dict[str, Any]:
    """The same job from ``fleet remediate`` on a fresh copy of the fleet, approved by two
    local users while it waits."""
    with running_emulator(copy.deepcopy(FLEET), **FAST) as emu:
        env = {**emulator_env(emu, tmp / "state"), "PATH": str(Path(sys.executable).parent)}
        proc = fleet_process(remediate_args(policies), env)
        try:
            url = env["FLEET_DATABASE_URL"]
            deadline = time.monotonic() + 90
            job_id = None
            while job_id is None and time.monotonic() < deadline:
                time.sleep(0.2)
                try:
                    with History(url) as history:
                        waiting_jobs = history.jobs(status="awaiting-approval")
                except Exception:
                    continue  # not created yet
                job_id = waiting_jobs[0]["id"] if waiting_jobs else None
            assert job_id, "the CLI job never waited for its approval"
            with History(url) as history:
                history.approve(job_id, "rest", by="alice")
                history.approve(job_id, "rest", by="bob")
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        with History(url) as history:
            return {
                "exit": proc.returncode,
                "report": json.loads(out),
                "job": history.get_job(job_id),
                "rows": history.job_clusters(job_id),
                "writes": history.writes(job_id),
                "stderr": err,
            }


def test_the_same_report_and_history_as_from_the_cli(
    through_the_api: dict[str, Any], served: Served, tmp_path: Path
) -> None:
    api = comparable(through_the_api["run"])
    cli = comparable(_cli_run(tmp_path, served.policies))
    assert through_the_api["run"]["report"]["job"]["engine"] == "local"
    for field in cli:
        assert api[field] == cli[field], (field, difference(cli[field], api[field]))

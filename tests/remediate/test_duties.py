"""Separation of duties in the history database, as both engines see it through
``History.approved``: the creator never approves, a wave may need N distinct approvers, and
every approval and cancel request is an audit event; cluster write locks of local jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.core.duties import Actor
from fleet.core.errors import ApprovalRefused, NotApprovable
from fleet.jobs import killswitch, operators
from fleet.record.history import History, open_history

CREATOR = Actor("Carol Creator", "oid-carol", "api")
ALICE = Actor("Alice Approver", "oid-alice", "api")
BOB = Actor("Bob Approver", "oid-bob", "api")
CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/k1"


@pytest.fixture
def history(tmp_path: Path) -> History:
    return open_history(f"sqlite:///{tmp_path / 'fleet.db'}", upgrade=True)


def _job(history: History, approvers: int, creator: Actor | None = CREATOR) -> str:
    return history.create_job(
        kind="remediation",
        job_id="20260101T000000Z-dddddd",
        status="awaiting-approval",
        options={
            "waves": [
                {"name": "canary", "approval": False, "approvers": 1},
                {"name": "broad", "approval": True, "approvers": approvers},
            ],
            "createdBy": creator.to_json() if creator else None,
        },
    )


def test_the_creator_can_never_approve_and_is_never_counted(history: History) -> None:
    job = _job(history, approvers=1)
    with pytest.raises(ApprovalRefused, match="creator"):
        history.approve(job, "broad", actor=CREATOR)
    assert not history.approved(job, "broad")
    record = history.get_job(job)  # the refusal recorded nothing
    assert record is not None and record["approvals"] == []
    history.approve(job, "broad", actor=ALICE)
    assert history.approved(job, "broad")


def test_a_wave_needs_n_distinct_approvers(history: History) -> None:
    job = _job(history, approvers=2)
    history.approve(job, "broad", actor=ALICE)
    history.approve(job, "broad", actor=ALICE)  # the same person twice counts once
    assert not history.approved(job, "broad")
    history.approve(job, "canary", actor=BOB)  # another wave's approval is not this one's
    assert not history.approved(job, "broad")
    history.approve(job, "broad", actor=BOB)
    assert history.approved(job, "broad")


def test_a_job_started_at_the_command_line_has_no_creator_to_exclude(history: History) -> None:
    job = _job(history, approvers=2, creator=Actor.local())
    history.approve(job, "broad", by="alice")
    history.approve(job, "broad", by="alice")
    assert not history.approved(job, "broad")  # local users are distinct approvers too
    history.approve(job, "broad", by="bob")
    assert history.approved(job, "broad")


def test_operators_name_the_wave_waited_for_and_refuse_ended_jobs(history: History) -> None:
    job = _job(history, approvers=2)
    history.update_job(job, summary={"progress": {"waitingFor": "broad"}})
    found = operators.approve(history, job[:12], ALICE)
    assert (found.wave, found.approvers, found.required, found.complete) == (
        "broad",
        ["oid-alice"],
        2,
        False,
    )
    with pytest.raises(NotApprovable, match="no wave"):
        operators.approve(history, job, BOB, "nope")
    operators.cancel(history, job, BOB)
    history.update_job(job, status="cancelled")
    with pytest.raises(NotApprovable, match="nothing to approve"):
        operators.approve(history, job, BOB)
    with pytest.raises(NotApprovable, match="already cancelled"):
        operators.cancel(history, job, BOB)


def test_approvals_cancels_and_the_kill_switch_are_audit_events(history: History) -> None:
    job = _job(history, approvers=1)
    history.approve(job, "broad", actor=ALICE)
    history.request_cancel(job, actor=BOB)
    killswitch.engage(history, None, reason="incident", actor=ALICE)
    killswitch.release(history, None, actor=BOB)
    events = history.events()
    assert [(e["action"], e["actor"]["oid"], e["actor"]["name"], e["jobId"]) for e in events] == [
        ("kill-switch.release", "oid-bob", "Bob Approver", None),
        ("kill-switch.engage", "oid-alice", "Alice Approver", None),
        ("job.cancel", "oid-bob", "Bob Approver", job),
        ("job.approve", "oid-alice", "Alice Approver", job),
    ]
    assert events[1]["detail"] == {"reason": "incident"} and events[3]["wave"] == "broad"
    assert all(e["at"] and e["actor"]["via"] == "api" for e in events)
    assert [e["action"] for e in history.events(job_id=job, limit=1)] == ["job.cancel"]
    assert [e["action"] for e in history.events(before=events[1]["id"])] == [
        "job.cancel",
        "job.approve",
    ]
    assert not hasattr(history, "delete_event") and not hasattr(history, "update_event")


def test_cluster_locks_are_per_job_reentrant_and_expire(history: History) -> None:
    assert history.lock_cluster(CLUSTER, "job-a", ttl_seconds=60)
    assert history.lock_cluster(CLUSTER.upper(), "job-a", ttl_seconds=60)  # re-entrant
    assert not history.lock_cluster(CLUSTER, "job-b", ttl_seconds=60)
    assert history.cluster_lock_holder(CLUSTER) == "job-a"
    history.unlock_cluster(CLUSTER, "job-b")  # not its lock: nothing happens
    assert history.cluster_lock_holder(CLUSTER) == "job-a"
    history.unlock_clusters([CLUSTER], "job-a")
    assert history.cluster_lock_holder(CLUSTER) is None
    assert history.lock_cluster(CLUSTER, "job-b", ttl_seconds=-1)  # a dead process's lock
    assert history.cluster_lock_holder(CLUSTER) is None
    assert history.lock_cluster(CLUSTER, "job-c", ttl_seconds=60)  # expired: taken over
    assert history.cluster_lock_holder(CLUSTER) == "job-c"

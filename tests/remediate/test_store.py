"""The history database's remediation-job state: clusters, cancel, approvals, LRO tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.core import redact
from fleet.core.errors import JobNotFound
from fleet.record.audit import body_digest
from fleet.record.history import History, open_history


@pytest.fixture
def history(tmp_path: Path) -> History:
    return open_history(f"sqlite:///{tmp_path / 'fleet.db'}", upgrade=True)


CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-a/providers/"
    "Microsoft.ContainerService/managedClusters/aks-1"
)


def test_job_clusters_round_trip_and_update(history: History) -> None:
    job = history.create_job(kind="remediation", job_id="20260101T000000Z-aaaaaa")
    actions = [{"kind": "put_extension", "protected": {"key": "env:TOKEN"}}]
    history.add_job_clusters(
        job,
        [
            {
                "clusterId": CLUSTER,
                "name": "aks-1",
                "wave": "canary",
                "status": "pending",
                "facts": {"id": CLUSTER},
                "actions": actions,
            },
            {
                "clusterId": CLUSTER.replace("aks-1", "aks-2"),
                "name": "aks-2",
                "status": "retry",
                "reason": "the cluster is stopped",
            },
        ],
    )
    history.update_job_cluster(job, CLUSTER.upper(), status="fixed", outcome={"writes": 1})
    rows = history.job_clusters(job)
    assert [(r["name"], r["status"], r["wave"]) for r in rows] == [
        ("aks-1", "fixed", "canary"),
        ("aks-2", "retry", None),
    ]
    assert rows[0]["actions"] == actions and rows[0]["outcome"] == {"writes": 1}
    assert [r["name"] for r in history.job_clusters(job, statuses=["retry"])] == ["aks-2"]
    with pytest.raises(KeyError):
        history.update_job_cluster(job, CLUSTER + "x", status="fixed")


def test_cancel_and_approvals_are_seen_by_the_running_job(history: History) -> None:
    job = history.create_job(kind="remediation", job_id="20260101T000000Z-bbbbbb")
    assert not history.cancel_requested(job) and not history.approved(job, "canary")
    approved = history.approve(job, "canary", by="alice")
    history.approve(job, "canary", by="alice")  # idempotent: one approver counts once
    assert [a["wave"] for a in approved["approvals"]] == ["canary"]
    assert len(history.get_job(job)["approvals"]) == 1  # type: ignore[index]
    assert history.get_job(job)["approvals"][0]["by"] == "alice"  # type: ignore[index]
    assert history.approved(job, "canary") and not history.approved(job, "broad")
    assert history.request_cancel(job)["cancelRequested"] is True
    assert history.cancel_requested(job)
    with pytest.raises(JobNotFound):
        history.request_cancel("nope")


def test_find_job_by_latest_id_and_prefix(history: History) -> None:
    with pytest.raises(JobNotFound):
        history.find_job("latest")
    a = history.create_job(kind="remediation", job_id="20260101T000000Z-abc123")
    b = history.create_job(kind="remediation", job_id="20260102T000000Z-abd456")
    assert history.find_job("latest") == b
    assert history.find_job(a) == a
    assert history.find_job("20260101") == a
    with pytest.raises(JobNotFound, match="more than one"):
        history.find_job("2026010")
    with pytest.raises(JobNotFound):
        history.find_job("2027")
    with pytest.raises(JobNotFound):  # LIKE wildcards are literal
        history.find_job("%")


def test_continuation_tokens_are_stored_but_never_with_a_secret(history: History) -> None:
    job = history.create_job(kind="remediation", job_id="20260101T000000Z-cccccc")
    write = history.record_write(
        job_id=job,
        cluster_id=CLUSTER,
        resource_id=CLUSTER + "/x",
        action="put_extension",
        method="PUT",
        body_digest=body_digest({"properties": {}}),
    )
    history.set_write_operation(
        write, continuation_token="eyJ0b2tlbiI6MX0=", correlation_id="corr-1"
    )
    [row] = history.writes(job)
    assert row["continuationToken"] == "eyJ0b2tlbiI6MX0=" and row["outcome"] == "running"
    assert row["correlationId"] == "corr-1"
    redact.register("s3cret-value-123")
    try:
        with pytest.raises(ValueError, match="never stored"):
            history.set_write_operation(write, continuation_token="x s3cret-value-123 x")
    finally:
        redact.clear()

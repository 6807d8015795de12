"""The rules of a job's life (``fleet.apply.lifecycle``), pure: stop reasons, budget, endings."""

from __future__ import annotations

import pytest

from fleet.apply.lifecycle import (
    Budget,
    JobStatus,
    StopKind,
    StopReason,
    approval_expired,
    exit_code,
    final_status,
    first,
    not_started,
    start_result,
)
from fleet.apply.outcomes import Category, ClusterOutcome, ClusterStatus
from fleet.apply.spec import ClusterTask, JobSpec, Mode
from fleet.apply.waves import RolloutChoice, assign_waves
from fleet.core.clusters import ClusterFacts
from fleet.policy.loading import load
from fleet.policy.models import Rollout
from tests.conftest import POLICIES

SUB = "00000000-0000-0000-0000-000000000001"


def task(i: int, wave: str = "all") -> ClusterTask:
    facts = ClusterFacts(
        id=f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
        f"Microsoft.ContainerService/managedClusters/aks-{i}",
        name=f"aks-{i}",
        cluster_type="managedClusters",
        subscription_id=SUB,
        resource_group="rg",
    )
    return ClusterTask(facts, (), wave)


def spec(n: int, **rollout: object) -> JobSpec:
    tasks = {t.facts.key: t for t in (task(i) for i in range(n))}
    choice = RolloutChoice("platform-baseline", Rollout.model_validate(rollout))
    waves = assign_waves((t.facts for t in tasks.values()), choice.rollout)
    for w in waves:
        for c in w.clusters:
            tasks[c.lower()] = ClusterTask(tasks[c.lower()].facts, (), w.name)
    return JobSpec(
        id="job-1",
        mode=Mode.LIVE,
        policy_set=load([POLICIES]),
        choice=choice,
        waves=waves,
        tasks=tasks,
    )


@pytest.mark.parametrize(
    ("reason", "status", "code"),
    [
        (StopReason.cancelled(), JobStatus.CANCELLED, 130),
        (
            StopReason.kill_switch("the kill switch is on (engaged by ops)"),
            JobStatus.CANCELLED,
            130,
        ),
        (StopReason.failure_budget("canary", 2, 1, 10), JobStatus.STOPPED, 1),
        (StopReason.approval_timeout("broad", 30), JobStatus.STOPPED, 1),
    ],
)
def test_every_stop_has_one_status_and_exit_code(
    reason: StopReason, status: JobStatus, code: int
) -> None:
    assert reason.status is status
    assert exit_code(reason.status) == code
    assert final_status(reason, [], 0) is status
    assert StopReason.from_json(reason.to_json()) == reason
    # a cluster the job never reached says why, with the stop's own category
    outcome = not_started(task(1), reason)
    assert outcome.status is ClusterStatus.NOT_STARTED
    assert outcome.reason == reason.message
    assert outcome.category is Category(reason.kind.value)


def test_messages_name_what_stopped_the_job() -> None:
    assert StopReason.failure_budget("canary", 2, 1, 10).message == (
        "failure budget exceeded in wave 'canary': 2 failed, budget 1 failed cluster(s): "
        "stops at 2 failed"
    )
    assert StopReason.approval_timeout("broad", 30).message == (
        "approval of wave 'broad' timed out after 30s"
    )
    assert StopReason.kill_switch("the kill switch is on").message == "the kill switch is on"


def test_the_first_stop_reason_wins() -> None:
    budget = StopReason.failure_budget("w", 3, 2, 10)
    assert first(None, budget) is budget
    assert first(budget, StopReason.cancelled()) is budget
    assert first(budget, None) is budget


def test_budget_counts_and_percentages() -> None:
    assert Budget(1, 10).stop("w", 1) is None
    stop = Budget(1, 10).stop("w", 2)
    assert stop is not None and stop.kind is StopKind.FAILURE_BUDGET
    assert Budget("10%", 20).stop("w", 2) is None  # 10 % of 20 allows 2
    assert Budget("10%", 20).stop("w", 3) is not None
    assert Budget(0, 5).exceeded(1)


def test_approval_expires_at_its_timeout() -> None:
    assert approval_expired("w", 9.9, 10) is None
    expired = approval_expired("w", 10, 10)
    assert expired is not None and expired.kind is StopKind.APPROVAL_TIMEOUT


def test_success_completion_and_what_not_started_means() -> None:
    job = spec(3)
    result = start_result(job, principal="p")
    assert {o.status for o in result.outcomes.values()} == {ClusterStatus.PENDING}
    outcomes = list(result.outcomes.values())
    outcomes[0].settle(ClusterStatus.FIXED, None, None)
    outcomes[1].settle(ClusterStatus.FIXED, None, None)
    settled = result.finish(None)
    # the one never reached is not started, on the retry list, and the job only completed
    assert [o.cluster_id for o in settled] == [outcomes[2].cluster_id]
    assert outcomes[2].status is ClusterStatus.NOT_STARTED
    assert result.status is JobStatus.COMPLETED and result.exit_code == 0
    assert result.retry_list() == [outcomes[2].cluster_id]
    assert result.counts()["notStarted"] == 1

    result = start_result(spec(2), principal="p")
    for o in result.outcomes.values():
        o.settle(ClusterStatus.FIXED, None, None)
    result.finish(None)
    assert result.status is JobStatus.SUCCEEDED


def test_a_failed_cluster_means_completed_not_succeeded() -> None:
    result = start_result(spec(2), principal="p")
    first_, second = result.outcomes.values()
    first_.settle(ClusterStatus.FIXED, None, None)
    second.settle(ClusterStatus.FAILED, "boom", Category.WRITE)
    result.finish(None)
    assert result.status is JobStatus.COMPLETED


def test_report_counts_waves_from_outcomes() -> None:
    job = spec(4, waves=[{"name": "canary", "percent": 50}, {"name": "rest", "percent": 100}])
    result = start_result(job, principal="p")
    stop = StopReason.cancelled()
    for o in result.outcomes.values():
        if o.wave == "canary":
            o.settle(ClusterStatus.FIXED, None, None)
    result.finish(stop)
    report = result.report(clusters=True)
    assert report["job"]["status"] == "cancelled"
    assert report["job"]["stopReason"] == "cancelled" and report["job"]["stopKind"] == "cancelled"
    waves = {w["name"]: w for w in report["waves"]}
    for w in job.waves:
        expected = "fixed" if w.name == "canary" else "not-started"
        assert waves[w.name].get(expected) == len(w.clusters)
    assert {c["status"] for c in report["clusters"]} <= {"fixed", "not-started"}


def test_outcomes_survive_the_trip_through_redis_unchanged() -> None:
    o = ClusterOutcome(task(1).id, "aks-1", "canary", ClusterStatus.FAILED, "x", Category.SECRET)
    o.errors.append("Conflict")
    back = ClusterOutcome.from_state(o.to_state())
    assert back.record() == o.record() and back.to_json() == o.to_json()

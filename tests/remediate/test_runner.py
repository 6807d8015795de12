"""The local engine's wave loop with its per-cluster steps replaced: ordering, soak, budget.

The steps themselves are tested end to end against the emulator; here they are stand-ins that
record what the loop asks of them, so the loop's rules are checked exactly and fast.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fleet.apply.lifecycle import JobStatus, StopKind
from fleet.apply.outcomes import ClusterOutcome, ClusterStatus
from fleet.apply.spec import ClusterTask, JobSpec, Mode
from fleet.apply.steps import Edges, record_job
from fleet.apply.waves import RolloutChoice, assign_waves
from fleet.core.clusters import ClusterFacts
from fleet.jobs.local import NullJobProgress, Steps, run_remediation
from fleet.plan.actions import Action, ActionKind
from fleet.policy.loading import load
from fleet.policy.models import Rollout
from fleet.record.history import History, open_history
from fleet.settings import Settings
from tests.conftest import POLICIES

SUB = "00000000-0000-0000-0000-000000000001"


def facts(i: int) -> ClusterFacts:
    return ClusterFacts(
        id=f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
        f"Microsoft.ContainerService/managedClusters/aks-{i:03d}",
        name=f"aks-{i:03d}",
        cluster_type="managedClusters",
        subscription_id=SUB,
        resource_group="rg",
        tags={"ring": "0" if i < 2 else "1"},
    )


def action(f: ClusterFacts) -> Action:
    return Action(
        kind=ActionKind.PUT_EXTENSION,
        cluster_id=f.id,
        resource_id=f.id + "/providers/Microsoft.KubernetesConfiguration/extensions/flux",
        method="PUT",
        body={"properties": {}},
        policies=["platform-baseline"],
    )


class Env:
    def __init__(self) -> None:
        self.settings = Settings(concurrency=8, auth="emulator", arm_endpoint="https://127.0.0.1:1")


def make(tmp_path: Path, n: int, **rollout: Any) -> tuple[JobSpec, Edges]:
    tasks = {facts(i).key: ClusterTask(facts(i), (action(facts(i)),)) for i in range(n)}
    choice = RolloutChoice("platform-baseline", Rollout.model_validate(rollout))
    spec = JobSpec(
        id=f"job-{n}-{time.monotonic_ns()}",
        mode=Mode.LIVE,
        policy_set=load([POLICIES]),
        choice=choice,
        waves=[],
        tasks=tasks,
    )
    spec.waves = assign_waves((t.facts for t in tasks.values()), choice.rollout)
    for w in spec.waves:
        for c in w.clusters:
            t = spec.task_of(c)
            spec.tasks[t.facts.key] = ClusterTask(t.facts, t.actions, w.name)
    history = open_history(f"sqlite:///{tmp_path / 'fleet.db'}", upgrade=True)
    edges = Edges(
        session=None,
        history=history,
        catalogs=None,  # type: ignore[arg-type]
        fingerprint_key=b"k",
        principal="tester",
    )
    record_job(history, spec, principal="tester")
    return spec, edges


@pytest.fixture
def steps() -> dict[str, Any]:
    """Stand-in steps: a log of (event, cluster name, monotonic time); failures on demand.
    ``steps["work"]`` is what ``run_remediation(work=...)`` takes."""
    state: dict[str, Any] = {"log": [], "fail": set(), "lock": threading.Lock()}

    def write(edges: Edges, spec: JobSpec, task: ClusterTask) -> ClusterOutcome:
        with state["lock"]:
            state["log"].append(("write", task.facts.name, time.monotonic()))
        status = ClusterStatus.FAILED if task.facts.name in state["fail"] else ClusterStatus.APPLIED
        return ClusterOutcome(
            task.id,
            task.facts.name,
            task.wave,
            status,
            "boom" if status is ClusterStatus.FAILED else None,
        )

    def check(
        edges: Edges, spec: JobSpec, task: ClusterTask, outcome: ClusterOutcome
    ) -> ClusterOutcome:
        with state["lock"]:
            state["log"].append(("verify", task.facts.name, time.monotonic()))
        outcome.status = ClusterStatus.FIXED
        return outcome

    state["work"] = Steps(write=write, verify=check)
    return state


def test_waves_run_in_order_each_verified_after_its_soak(
    tmp_path: Path, steps: dict[str, Any]
) -> None:
    spec, edges = make(
        tmp_path,
        6,
        waves=[
            {"name": "canary", "selector": {"tags": {"ring": "0"}}},
            {"name": "rest", "percent": 100},
        ],
        soakSeconds=1,
    )
    started = time.monotonic()
    result = run_remediation(Env(), spec, edges, work=steps["work"])  # type: ignore[arg-type]
    assert result.status is JobStatus.SUCCEEDED
    log = steps["log"]
    canary = {"aks-000", "aks-001"}
    events = [(e, n in canary) for e, n, _ in log]
    # canary written, then (after the soak) verified, then the rest written and verified
    assert (
        events
        == [("write", True)] * 2
        + [("verify", True)] * 2
        + [("write", False)] * 4
        + [("verify", False)] * 4
    )
    last_canary_write = max(t for e, n, t in log if e == "write" and n in canary)
    first_verify = min(t for e, n, t in log if e == "verify")
    assert first_verify - last_canary_write >= 1.0
    assert time.monotonic() - started < 1.9  # no soak after the last wave
    with History(edges.history.url) as history:
        job = history.get_job(spec.id)
        assert job is not None and job["status"] == "succeeded"
        assert job["counters"]["fixed"] == 6
        assert {c["status"] for c in history.job_clusters(spec.id)} == {"fixed"}


def test_the_budget_stops_a_wave_between_clusters(tmp_path: Path, steps: dict[str, Any]) -> None:
    spec, edges = make(tmp_path, 6, maxConcurrency=1, failureBudget=1)
    order = [spec.task_of(c).facts.name for c in spec.waves[0].clusters]
    steps["fail"] = set(order[:2])
    result = run_remediation(Env(), spec, edges, work=steps["work"])  # type: ignore[arg-type]
    assert result.status is JobStatus.STOPPED and result.stop is not None
    assert result.stop.kind is StopKind.FAILURE_BUDGET
    assert result.stop.message.startswith("failure budget exceeded in wave 'all': 2 failed")
    written = [n for e, n, _ in steps["log"] if e == "write"]
    # maxConcurrency 1: no cluster is taken before the previous one came back, so nothing is
    # written after the second failure (the Celery engine stops at the same cluster)
    assert written == order[:2]
    statuses = {o.name: o.status.value for o in result.outcomes.values()}
    assert [statuses[n] for n in order] == [
        "failed",
        "failed",
        "not-started",
        "not-started",
        "not-started",
        "not-started",
    ]
    assert sorted(result.retry_list()) == sorted(o.cluster_id for o in result.outcomes.values())


def test_a_pre_approved_wave_does_not_wait_and_cancel_stops_before_the_next_wave(
    tmp_path: Path, steps: dict[str, Any]
) -> None:
    spec, edges = make(
        tmp_path,
        4,
        waves=[
            {"name": "canary", "selector": {"tags": {"ring": "0"}}, "approval": True},
            {"name": "rest", "percent": 100},
        ],
    )
    edges.history.approve(spec.id, "canary", by="tester")
    cancel = threading.Event()

    class CancelAfterCanary(NullJobProgress):
        def wave_finished(self, wave: Any, counts: Any) -> None:
            cancel.set()

    result = run_remediation(
        Env(),
        spec,
        edges,  # type: ignore[arg-type]
        progress=CancelAfterCanary(),
        cancel=cancel,
        work=steps["work"],
    )
    assert result.status is JobStatus.CANCELLED
    assert {n for e, n, _ in steps["log"]} == {"aks-000", "aks-001"}
    assert sorted(o.status.value for o in result.outcomes.values()) == [
        "fixed",
        "fixed",
        "not-started",
        "not-started",
    ]


def test_the_progress_display_draws_on_a_terminal() -> None:
    from fleet.apply.waves import WavePlan
    from fleet.cli.remediate_cmds import JobDisplay

    wave = WavePlan("canary", 0, ("/a", "/b"))
    with JobDisplay(enabled=True) as display:
        display.wave_started(wave, 2)
        display.phase(wave, "writing")
        for cid in ("/a", "/b", "/a"):  # the verification of /a does not count twice
            display.cluster_done(ClusterOutcome(cid, cid, "canary", ClusterStatus.APPLIED))
        assert display._progress is not None
        assert display._progress.tasks[0].completed == 2
        display.wave_finished(wave, {"fixed": 2})


def test_a_recorded_job_reads_back_with_its_waves_in_order(tmp_path: Path) -> None:
    """The Celery engine runs a job from its record: the waves must hold the same clusters in
    the same order as the prepared job (by stable position, not the history's row order)."""
    from fleet.jobs.preparing import load_spec

    spec, edges = make(
        tmp_path,
        12,
        waves=[{"name": "canary", "percent": 30}, {"name": "rest", "percent": 100}],
        maxConcurrency=3,
    )
    loaded = load_spec(edges.history, spec.id, spec.policy_set, b"k")
    assert [(w.name, w.clusters, w.approval) for w in loaded.waves] == [
        (w.name, w.clusters, w.approval) for w in spec.waves
    ]
    assert loaded.tasks.keys() == spec.tasks.keys()
    assert loaded.choice.rollout == spec.choice.rollout

"""The Celery engine's task bodies as plain calls: in-memory job state, a stub dispatcher.

No broker and no worker: ``workers.remediation_flow`` runs against ``MemoryJobState`` (checked
against Redis by ``test_jobstate_contract.py``) and ``workers.stub.StubDispatch``, while ARM is
the emulator through the real SDK and the history a real SQLite file. This is where the orders
of delivery real workers produce only by chance are produced on purpose: every message twice,
a lost message, a secret that disappears between two writes of one cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet.apply.spec import JobRequest
from fleet.emulator.generate import generate
from fleet.emulator.testing import running_emulator
from fleet.jobs import killswitch
from fleet.jobs.distributed import policy_set_of, submit_remediation
from fleet.jobs.preparing import make_edges
from fleet.jobs.runs import environment
from fleet.policy.loading import load
from fleet.record.jobstate_memory import MemoryJobState
from fleet.settings import Settings
from tests.conftest import emulator_env
from tests.distributed.test_parity import FAST, policy_dir
from workers import remediation_flow as flow
from workers.stub import Message, StubClock, StubDispatch

FLEET = generate(clusters=10, subscriptions=1, seed=23)
PUBLIC = """\
  fluxConfigurations:
    - name: aaa-public
      scope: cluster
      namespace: aaa-public
      gitRepository:
        url: https://github.com/fleet-examples/public-apps
        repositoryRef: {branch: main}
      kustomizations:
        apps: {path: ./apps, prune: true}
"""


class _App:
    """Stands in for the Celery client ``submit_remediation`` sends the start message with."""

    def __init__(self, stub: StubDispatch) -> None:
        self.stub = stub

    def send_task(self, name: str, args: list[Any], queue: str) -> None:
        self.stub.send(name, tuple(args))


@dataclass
class Harness:
    ctx: flow.Context
    stub: StubDispatch
    jobs: MemoryJobState
    settings: Settings
    history: Any
    folder: Path

    def submit(self, **request: Any) -> str:
        policy_set = load([self.folder / "policies"])
        return submit_remediation(
            self.settings,
            policy_set,
            JobRequest(**request),
            jobs=self.jobs,
            app=_App(self.stub),  # type: ignore[arg-type]
        )


@pytest.fixture
def harness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    options = getattr(request, "param", {})
    folder = policy_dir(
        tmp_path,
        approval=False,
        budget="100%",
        max_concurrency=int(options.get("max_concurrency", 4)),
    )
    # A configuration without a secret, written first (actions of a kind run in id order), so
    # every cluster has a write that needs no secret before the one that does.
    policy = folder / "parity.yaml"
    policy.write_text(policy.read_text().replace("  fluxConfigurations:\n", PUBLIC, 1))
    with running_emulator(FLEET, **FAST) as emu:
        env = emulator_env(emu, tmp_path / "state")
        settings = Settings(**{k[6:].lower(): v for k, v in env.items() if k.startswith("FLEET_")})
        with environment(settings) as e:
            edges = make_edges(e)
            clock = StubClock()
            jobs = MemoryJobState(clock=clock)
            stub = StubDispatch(clock=clock)
            ctx = flow.Context(
                jobs=jobs,
                dispatch=stub,
                edges=lambda meta: (e, edges),
                policy_set=policy_set_of,
                kill_switch=lambda: killswitch.for_writes(e.history),
                claim_ttl=10,
                clock=clock,
            )
            assert e.history is not None
            yield Harness(ctx, stub, jobs, settings, e.history, tmp_path)


def final_rows(h: Harness, job_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = h.history.job_clusters(job_id)
    assert rows and not [r for r in rows if r["status"] in ("pending", "applied")], rows
    return rows


def test_a_job_runs_to_its_end_as_plain_calls(harness: Harness) -> None:
    job_id = harness.submit()
    ran = harness.stub.run(harness.ctx)
    meta = harness.jobs.meta(job_id)
    assert meta["status"] == "complete", meta.get("error")
    assert meta["jobStatus"] in ("succeeded", "completed")
    assert ran < 500
    rows = final_rows(harness, job_id)
    assert {r["status"] for r in rows} >= {"fixed"}
    assert len(harness.jobs.all_written(job_id)) == meta["toWrite"]


def test_a_secret_gone_before_the_next_write_fails_the_cluster_instead_of_looping(
    harness: Harness,
) -> None:
    """A poll-only worker cannot read the secret of a cluster's next write: the cluster ends
    ``failed`` (secret), as on the local engine, and the job goes on (a poll task that raised
    would be acked, and the watchdog's resume would send it again for ever)."""
    token = harness.folder / "git-token"

    def lose_the_token(message: Message) -> None:
        if message.task == flow.POLL and token.exists():
            token.unlink()

    job_id = harness.submit()
    harness.stub.run(harness.ctx, before=lose_the_token, limit=2000)
    assert harness.jobs.meta(job_id)["status"] == "complete"
    rows = final_rows(harness, job_id)
    secret = [r for r in rows if (r["outcome"] or {}).get("category") == "secret"]
    assert secret, rows
    assert all(r["status"] == "failed" and "secret unavailable" in r["reason"] for r in secret)
    # some of them had their first write (the extension) done before the second could not go
    writes = {w["clusterId"].lower(): w for w in harness.history.writes(job_id)}
    assert any(r["clusterId"].lower() in writes for r in secret)


def test_every_message_delivered_twice_changes_nothing(harness: Harness) -> None:
    stub = harness.stub
    original = stub.send

    def twice(task: str, args: tuple[Any, ...], *, countdown: float = 0) -> None:
        original(task, args, countdown=countdown)
        original(task, args, countdown=countdown)

    stub.send = twice  # type: ignore[method-assign]
    job_id = harness.submit()
    stub.run(harness.ctx, limit=5000)
    meta = harness.jobs.meta(job_id)
    assert meta["status"] == "complete"
    rows = final_rows(harness, job_id)
    assert len({r["clusterId"].lower() for r in rows}) == len(rows)
    writes = harness.history.writes(job_id)
    written = [(w["resourceId"].lower(), w["action"]) for w in writes]
    assert len(written) == len(set(written)), "a resource was written twice"
    counts = harness.jobs.counts(job_id)
    assert counts["done"] == meta["toWrite"]  # every cluster counted exactly once


@pytest.mark.parametrize("harness", [{"max_concurrency": 2}], indirect=True)
def test_a_wave_sends_max_concurrency_clusters_at_a_time(harness: Harness) -> None:
    job_id = harness.submit()
    stub = harness.stub
    in_flight: list[int] = []

    def watch(message: Message) -> None:
        written = len(harness.jobs.all_written(job_id)) if harness.jobs.exists(job_id) else 0
        started = sum(1 for m in stub.delivered if m.task == flow.CLUSTER and m.args[0] == job_id)
        in_flight.append(started - written)

    stub.run(harness.ctx, before=watch)
    assert harness.jobs.meta(job_id)["status"] == "complete"
    assert max(in_flight) <= 2, in_flight


def test_a_lost_message_is_sent_again_by_resume(harness: Harness) -> None:
    lost: list[Message] = []

    def lose_one_verification(message: Message) -> bool:
        if message.task == flow.VERIFY and not lost:
            lost.append(message)
            return False
        return True

    job_id = harness.submit()
    harness.stub.run(harness.ctx, before=lose_one_verification)
    assert lost and harness.jobs.meta(job_id)["status"] == "running"  # stalled
    assert flow.resume(harness.ctx, job_id) >= 1
    harness.stub.run(harness.ctx)
    assert harness.jobs.meta(job_id)["status"] == "complete"
    final_rows(harness, job_id)

"""The fault suite's fixtures: a small generated fleet, emulators that can be hurt and restarted,
and the three checks every fault test makes.

- **Completeness**: a sweep has exactly one verdict per targeted cluster (the example
  policies target every cluster of the generated fleet), none twice; a remediation job has
  exactly one outcome per targeted cluster (listed, or counted as compliant), and the history
  database holds the same outcomes.
- **Correctness**: every verdict is the one docs/scenario.md gives for its cluster's defect,
  except clusters the test names as damaged, which must be ``READ_ERROR`` *with a reason*;
  a remediation reports ``fixed`` only for clusters a fresh sweep finds compliant (the
  emulator's state is re-read, the job's word is not taken).
- **Convergence**: once the fault is gone, a rerun gives the full correct result.

The fleet is small (30 clusters in 2 subscriptions, every defect kind) and the emulator fast
(``Retry-After: 0``, one poll per operation, no ARM throttling unless a test wants it), so
the whole suite runs in a couple of minutes.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.emulator.generate import generate
from fleet.emulator.server import EmulatorServer
from fleet.emulator.testing import AdminClient, RunningEmulator
from tests.conftest import POLICIES, REPO, emulator_env
from tests.scenario import mismatch

CLUSTERS = 30
SUBSCRIPTIONS = 2
SEED = 23
CLUSTER_TYPES = (
    "Microsoft.ContainerService/managedClusters",
    "Microsoft.Kubernetes/connectedClusters",
)
#: A fast emulator: no waiting for operations, Flux reconciles at once, no throttling.
FAST: dict[str, Any] = {
    "retry_after": 0,
    "lro_polls": 1,
    "reconcile_seconds": 0,
    "throttle": "off",
    "seed": 7,
}
#: Faults are absorbed by fleet's retries without waiting seconds for each.
QUICK: dict[str, Any] = {"FLEET_CONCURRENCY": 8}


@pytest.fixture(scope="session")
def fleet_snapshot() -> dict[str, Any]:
    return generate(clusters=CLUSTERS, subscriptions=SUBSCRIPTIONS, seed=SEED)


def defects(snapshot: dict[str, Any]) -> dict[str, str]:
    """cluster id (lower case) -> defect kind."""
    return {k.lower(): v for k, v in snapshot["generator"]["defects"].items()}


def facts_of(snapshot: dict[str, Any]) -> dict[str, ClusterFacts]:
    """cluster id (lower case) -> facts, for every cluster of the snapshot."""
    return {
        r["id"].lower(): facts_from_arm(r)
        for r in snapshot["resources"]
        if r["type"] in CLUSTER_TYPES
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- emulators that can be restarted ------------------------------------------------------------


@dataclass
class Emulator:
    """An emulator on a fixed port and CA directory that a test may stop and start again.

    ``restart()`` stops the server (in-flight requests finish, idle connections drop), takes
    its whole state — resources and the operations still running — and serves it from a new
    server on the same port with a new certificate from a CA written to the same file, which
    is what a client sees when the service behind a load balancer restarts.
    """

    snapshot: dict[str, Any]
    workdir: Path
    options: dict[str, Any] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    server: EmulatorServer | None = None
    restarts: int = 0
    #: The state the last restart served again.
    handed_over: dict[str, Any] = field(default_factory=dict)

    @property
    def ca_dir(self) -> Path:
        return self.workdir / "ca"

    def start(self, state: dict[str, Any] | None = None, **options: Any) -> RunningEmulator:
        merged = {**FAST, **self.options, **options, "port": self.port, "ca_dir": str(self.ca_dir)}
        self.server = EmulatorServer(state if state is not None else self.snapshot, **merged)
        endpoint, ca = self.server.start()
        return RunningEmulator(endpoint, ca, AdminClient(endpoint, ca), self.server)

    def state(self) -> dict[str, Any]:
        """The current state in the snapshot format (a private copy)."""
        assert self.server is not None
        return dict(orjson.loads(orjson.dumps(self.server.components.backend.dump())))

    def stop(self) -> dict[str, Any]:
        """Stop serving; returns the state at that moment."""
        assert self.server is not None
        self.server.stop()
        return self.state()

    def restart(self, **options: Any) -> RunningEmulator:
        """Stop, then serve the same state on the same port (``options`` change knobs)."""
        state = self.stop()
        self.restarts += 1
        self.handed_over = state
        return self.start(state, **options)

    @property
    def running(self) -> RunningEmulator:
        assert self.server is not None
        endpoint = self.server.endpoint
        ca = self.server.ca_bundle
        return RunningEmulator(endpoint, ca, AdminClient(endpoint, ca), self.server)


@pytest.fixture
def emulator_factory(fleet_snapshot: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    """``emulator_factory(**options)``: a started ``Emulator`` with a private copy of the
    fleet; every one started is stopped at the end of the test."""
    made: list[Emulator] = []

    def make(**options: Any) -> Emulator:
        emu = Emulator(copy.deepcopy(fleet_snapshot), tmp_path / f"emulator-{len(made)}", options)
        emu.start()
        made.append(emu)
        return emu

    yield make
    for emu in made:
        if emu.server is not None:
            emu.server.stop()


def calm(emu: Emulator) -> RunningEmulator:
    """The same state served again without the test's faults, for the rerun after the fault
    is cleared: the fast options, random rates and latency off; scripted faults added at run
    time are gone (a restart keeps only the snapshot's own: the scenario's permanent
    ``read_error`` faults)."""
    emu.options = {}
    return emu.restart(
        error_rate=0.0,
        reset_rate=0.0,
        slow_rate=0.0,
        lro_fail_rate=0.0,
        latency_ms=0.0,
        latency_p99_ms=None,
        lro_seconds=10.0,
    )


# --- running fleet ------------------------------------------------------------------------------


#: Where Redis is not: tests that do not start their own Redis must never reach one that
#: happens to run on the machine's default port (the kill switch would be mirrored there).
NO_REDIS = f"redis://127.0.0.1:{free_port()}/0"


def env_of(emu: RunningEmulator, state: Path, **extra: Any) -> dict[str, str]:
    return emulator_env(
        emu, state, **{**QUICK, "FLEET_REDIS_URL": NO_REDIS, "FLEET_BROKER_URL": NO_REDIS, **extra}
    )


def cli(args: list[str], env: dict[str, str]) -> Any:
    """The real CLI in this process."""
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def cli_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """The real CLI in its own process (for faults that happen while it runs)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    return subprocess.Popen(
        [sys.executable, "-m", "fleet", *args],
        env={**clean, **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sweep(emu: RunningEmulator, state: Path, **extra: Any) -> dict[str, Any]:
    result = cli(["sweep", "-p", str(POLICIES), "-o", "json"], env_of(emu, state, **extra))
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# --- the checks ---------------------------------------------------------------------------------


def check_sweep(
    report: dict[str, Any],
    snapshot: dict[str, Any],
    damaged: set[str] | None = None,
    reason: str = "",
) -> set[str]:
    """Completeness and correctness of a sweep report (see the module docstring).

    ``damaged``: clusters (lower-case ids) that may be ``READ_ERROR`` instead of their
    scenario verdict; None allows it for any cluster (a fault that hits at random: a read
    whose every attempt met it). Such a ``READ_ERROR`` must give the reason, and contain
    ``reason`` when one is given. Returns the clusters that were ``READ_ERROR`` because of
    the fault.
    """
    kinds, facts = defects(snapshot), facts_of(snapshot)
    ids = [c["id"].lower() for c in report["clusters"]]
    assert len(ids) == len(set(ids)), "a cluster was judged twice"
    assert sorted(ids) == sorted(facts), "a targeted cluster has no verdict"
    assert report["summary"]["clusters"] == len(facts) == CLUSTERS
    assert report["sweep"]["complete"] is True
    wrong, errored = [], set()
    for c in report["clusters"]:
        cid = c["id"].lower()
        problem = mismatch(kinds[cid], facts[cid], c)
        if problem is None:
            continue
        read_errors = [f for f in c["findings"] if f["code"] == "READ_ERROR"]
        explained = (
            c["state"] == "error"
            and read_errors
            and all(
                "could not be read: " in f["message"] and reason in f["message"]
                for f in read_errors
            )
            and (damaged is None or cid in damaged)
        )
        if explained:
            errored.add(cid)
        else:
            wrong.append(problem)
    assert wrong == [], "verdicts that are neither right nor an explained READ_ERROR"
    return errored


def check_sweep_exact(report: dict[str, Any], snapshot: dict[str, Any]) -> None:
    """Every cluster has exactly the scenario's verdict (the rerun after a fault)."""
    assert check_sweep(report, snapshot, damaged=set()) == set()


def job_outcomes(
    job: dict[str, Any], history_view: dict[str, Any], snapshot: dict[str, Any]
) -> dict[str, str]:
    """Completeness of a remediation job: one outcome per targeted cluster, the same in the
    job's report and in the history database. Returns cluster id -> status."""
    listed = [c["id"].lower() for c in job["clusters"]]
    assert len(listed) == len(set(listed)), "a cluster has two outcomes"
    targeted = len(facts_of(snapshot))
    assert len(listed) + job["summary"]["compliant"] == targeted
    statuses = {c["id"].lower(): c["status"] for c in job["clusters"]}
    stored = {c["clusterId"].lower(): c["status"] for c in history_view["clusters"]}
    assert stored == statuses, "the history database disagrees with the job's report"
    assert "pending" not in statuses.values() and "applied" not in statuses.values()
    return statuses


def check_fixed_is_fixed(statuses: dict[str, str], after: dict[str, Any]) -> None:
    """Correctness of a job: every cluster it calls fixed is compliant when read again."""
    states = {c["id"].lower(): c["state"] for c in after["clusters"]}
    lies = {
        cid: states[cid]
        for cid, s in statuses.items()
        if s == "fixed" and states[cid] not in ("compliant", "exempt")
    }
    assert lies == {}, "clusters reported fixed that a fresh read finds not compliant"


#: Defect kinds a remediation leaves alone by design (tests/remediate/test_remediate.py).
BLOCKED_KINDS = frozenset(
    {
        "arc_offline",
        "arc_expired",
        "aks_stopped",
        "read_error",
        "conflict",
        "flux_v1",
        "flux_config_noncompliant",
    }
)


def check_converged(after: dict[str, Any], snapshot: dict[str, Any]) -> None:
    """After a clean rerun of a remediation: every cluster a job can fix is compliant."""
    kinds, facts = defects(snapshot), facts_of(snapshot)
    states = {c["id"].lower(): c["state"] for c in after["clusters"]}
    assert sorted(states) == sorted(facts)
    left = {}
    for cid, kind in kinds.items():
        blocked = kind in BLOCKED_KINDS or (
            kind == "version_out_of_window" and facts[cid].tags.get("env") == "prod"
        )
        if not blocked and states[cid] not in ("compliant", "exempt"):
            left[facts[cid].name] = (kind, states[cid])
    assert left == {}, "clusters a clean rerun should have fixed"


def remediate(
    emu: RunningEmulator, state: Path, policies: Path | None = None, *args: str, **extra: Any
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``fleet remediate --yes -o json``: (CLI result, job report, ``fleet jobs show -o json``)."""
    env = env_of(emu, state, **extra)
    result = cli(["remediate", "-p", str(policies or POLICIES), "--yes", "-o", "json", *args], env)
    assert result.stdout.strip(), result.stderr
    job: dict[str, Any] = json.loads(result.stdout)
    shown = cli(["jobs", "show", job["job"]["id"], "-o", "json"], env)
    assert shown.exit_code == 0, shown.stderr
    return result, job, json.loads(shown.stdout)

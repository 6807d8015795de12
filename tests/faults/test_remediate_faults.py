"""Remediation jobs under fault: long-running operations that fail or never finish, writes that
time out on the client while the service still performs them, random 5xx and resets, and the
ARM endpoint restarting in the middle of the job.

Every test checks that each targeted cluster has exactly one outcome (in the job's report and
in the history database alike), that no cluster is reported ``fixed`` unless a fresh sweep of
the emulator's state finds it compliant, and that a clean rerun (``fleet remediate`` again,
faults gone) leaves every cluster a job can fix compliant. The rollout's failure budget is
raised to 100 % so that every wave runs and every cluster meets the fault.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.faults.conftest import (
    Emulator,
    calm,
    check_converged,
    check_fixed_is_fixed,
    cli,
    cli_process,
    defects,
    env_of,
    facts_of,
    job_outcomes,
    remediate,
    sweep,
)
from tests.remediate.conftest import policy_dir, with_rollout

ROLLOUT = (
    "    rollout:\n      waves:\n"
    '        - {name: canary, selector: {tags: {ring: "0"}}}\n'
    "        - {name: broad, percent: 100}\n"
    "      maxConcurrency: 8\n      failureBudget: 100%\n"
)
#: Defect kinds whose clusters certainly get a write from the example policies.
WRITTEN = (
    "extension_drift",
    "extension_failed",
    "extension_missing",
    "branch_drift",
    "depends_on_drift",
    "flux_config_missing",
    "extra_kustomization",
)


def tolerant_policies(tmp_path: Path) -> Path:
    return policy_dir(tmp_path, {"baseline.yaml": with_rollout(ROLLOUT)})


def written_clusters(snapshot: dict[str, Any]) -> list[str]:
    facts = facts_of(snapshot)
    return sorted(
        (c for c, k in defects(snapshot).items() if k in WRITTEN), key=lambda c: facts[c].name
    )


def converge(emu: Emulator, tmp_path: Path, policies: Path, snapshot: dict[str, Any]) -> None:
    """The rerun once the fault is gone: a new job, then a sweep of the emulator's state."""
    running = calm(emu)
    state = tmp_path / "rerun"
    result, job, shown = remediate(running, state, policies)
    assert result.exit_code == 0, result.stderr
    statuses = job_outcomes(job, shown, snapshot)
    after = sweep(running, state)
    check_fixed_is_fixed(statuses, after)
    check_converged(after, snapshot)


def test_failed_operations_fail_their_clusters_and_nothing_else(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """Three clusters' writes end ``Failed`` (scripted, ARM's error code and message kept)
    and 10 % of all operations fail at random: those clusters are failed with the reason,
    the others fixed, none of the failed ones is reported fixed."""
    emu: Emulator = emulator_factory(lro_fail_rate=0.1)
    facts = facts_of(fleet_snapshot)
    doomed = written_clusters(fleet_snapshot)[:3]
    for cid in doomed:
        emu.running.admin.add_fault(
            action="lro_fail",
            method="PUT",
            pathPrefix=facts[cid].id,
            code="InjectedFailure",
            message="the operation broke",
        )
    policies = tolerant_policies(tmp_path)
    result, job, shown = remediate(emu.running, tmp_path / "a", policies)
    assert result.exit_code == 0, result.stderr
    statuses = job_outcomes(job, shown, fleet_snapshot)
    for cid in doomed:
        assert statuses[cid] == "failed"
    by_id = {c["id"].lower(): c for c in job["clusters"]}
    for cid, status in statuses.items():
        if status == "failed":
            codes = {w["errorCode"] for w in by_id[cid]["writes"] if w["outcome"] == "failed"}
            assert codes & {"InjectedFailure", "OperationFailed"}, by_id[cid]
    assert job["job"]["status"] == "completed"  # not "succeeded": some failed
    check_fixed_is_fixed(statuses, sweep(emu.running, tmp_path / "a"))
    converge(emu, tmp_path, policies, fleet_snapshot)


def test_operations_that_never_finish_end_in_timeout_never_fixed(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """No operation ever ends (until the emulated clock is moved a fortnight): with
    ``--operation-timeout 2`` every written cluster is failed with ``timeout``, none fixed,
    and the job still ends."""
    emu: Emulator = emulator_factory(lro_polls=None, lro_seconds=1_000_000, retry_after=1)
    policies = tolerant_policies(tmp_path)
    began = time.monotonic()
    result, job, shown = remediate(
        emu.running, tmp_path / "a", policies, "--operation-timeout", "2"
    )
    assert time.monotonic() - began < 60
    assert result.exit_code == 0, result.stderr
    statuses = job_outcomes(job, shown, fleet_snapshot)
    assert "fixed" not in statuses.values()
    written = [c for c in job["clusters"] if c["writes"]]
    assert len(written) >= len(written_clusters(fleet_snapshot))
    for c in written:
        assert c["status"] == "failed"
        assert [w["outcome"] for w in c["writes"]] == ["timeout"], c
    assert {w["outcome"] for w in shown["writes"]} == {"timeout"}
    assert job["job"]["status"] == "completed"
    emu.running.admin.advance_clock(1_000_000)  # the operations end at last
    converge(emu, tmp_path, policies, fleet_snapshot)


def test_a_write_that_times_out_on_the_client_is_sent_again(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """The first PUT of each cluster stalls 3 s with a 1 s client timeout: ARM still performs
    it, fleet sends the PUT again (idempotent), and the late first request does not undo
    the second: every cluster ends fixed and verified."""
    emu: Emulator = emulator_factory()
    facts = facts_of(fleet_snapshot)
    for cid in written_clusters(fleet_snapshot):
        emu.running.admin.add_fault(
            action="delay", delaySeconds=3, method="PUT", pathPrefix=facts[cid].id, count=1
        )
    policies = tolerant_policies(tmp_path)
    result, job, shown = remediate(emu.running, tmp_path / "a", policies, FLEET_REQUEST_TIMEOUT=1)
    assert result.exit_code == 0, result.stderr
    statuses = job_outcomes(job, shown, fleet_snapshot)
    delayed = len(written_clusters(fleet_snapshot))
    assert emu.running.admin.stats()["faultsInjected"]["byAction"]["delay"] == delayed
    time.sleep(2.5)  # the stalled first requests land
    puts = [r for r in emu.running.admin.requests() if r["method"] == "PUT"]
    assert len(puts) >= len(shown["writes"]) + delayed  # each stalled PUT was sent again
    after = sweep(emu.running, tmp_path / "a")
    check_fixed_is_fixed(statuses, after)
    for cid in written_clusters(fleet_snapshot):
        assert statuses[cid] == "fixed", (facts[cid].name, statuses[cid])
    assert job["job"]["status"] == "succeeded"
    converge(emu, tmp_path, policies, fleet_snapshot)


def test_random_5xx_and_resets_during_a_job(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """10 % of requests answer 500/503 and 5 % are reset, reads, writes and polls alike: a
    write that could not be started or followed fails its cluster with the reason; nothing
    is reported fixed that is not; the rerun converges."""
    emu: Emulator = emulator_factory(error_rate=0.1, reset_rate=0.05)
    policies = tolerant_policies(tmp_path)
    result, job, shown = remediate(emu.running, tmp_path / "a", policies)
    assert result.exit_code == 0, result.stderr
    statuses = job_outcomes(job, shown, fleet_snapshot)
    stats = emu.running.admin.stats()
    assert stats["faultsInjected"]["byAction"]["error"] > 10
    assert stats["faultsInjected"]["byAction"]["reset"] > 5
    assert list(statuses.values()).count("fixed") >= len(written_clusters(fleet_snapshot)) // 2
    check_fixed_is_fixed(statuses, sweep(calm(emu), tmp_path / "a"))
    converge(emu, tmp_path, policies, fleet_snapshot)


def test_an_emulator_restart_mid_job_loses_nothing(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """The ARM endpoint restarts while writes are in flight (operations last 1.5 s; they are
    carried over, as ARM's are): the job ends with one outcome per cluster, polls the
    carried-over operations to their end, and reports no false ``fixed``."""
    emu: Emulator = emulator_factory(
        latency_ms=20, latency_p99_ms=40, lro_polls=None, lro_seconds=1.5
    )
    policies = tolerant_policies(tmp_path)
    state = tmp_path / "a"
    env = env_of(emu.running, state)
    proc = cli_process(["remediate", "-p", str(policies), "--yes", "-o", "json"], env)
    deadline = time.monotonic() + 60
    while emu.running.admin.stats()["writes"]["total"] < 4:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    running = emu.restart()
    in_flight = emu.handed_over["emulator"].get("operations", [])
    assert in_flight, "no operation was running when the emulator restarted"
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    job = json.loads(out)
    shown = cli(["jobs", "show", job["job"]["id"], "-o", "json"], env_of(running, state))
    statuses = job_outcomes(job, json.loads(shown.stdout), fleet_snapshot)
    assert running.admin.stats()["writes"]["total"] > 0  # the job went on writing after it
    check_fixed_is_fixed(statuses, sweep(running, state))
    converge(emu, tmp_path, policies, fleet_snapshot)

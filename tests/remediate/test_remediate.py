"""``fleet remediate`` end to end: the real CLI and SDK against the emulator's generated fleet.

"Unblocked" is precise here. A cluster is *blocked* — left alone, listed with its reason, and
still not compliant after the job — exactly when, at the time of the job, it is

- unreachable (Arc Offline/Expired) or stopped (AKS): status ``retry``, never written;
- unreadable (its reads fail): status ``retry``;
- in a policy conflict: ``skipped``/``conflict``, never written;
- carrying Flux v1 configurations while no enforce policy sets ``migrateFluxV1``:
  ``skipped``/``flux-v1``;
- non-compliant only by audit-owned findings (the prod clusters' version window belongs to the
  audit policy ``flux-version-audit``): ``skipped``/``audit``;
- non-compliant only by what no write fixes (Flux reports ``Non-Compliant`` while the
  configuration matches the policy): ``skipped``/``not-writable``.

Every other targeted cluster must be compliant (or exempt) in a sweep after the job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleet.core.vocabulary import State
from tests.conftest import POLICIES
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

#: defect kind -> (job status, category) of the blocked kinds (the module docstring).
BLOCKED = {
    "arc_offline": ("retry", "unreachable"),
    # An expired Arc certificate needs a re-connect, not a retry (CLUSTER_INELIGIBLE).
    "arc_expired": ("skipped", "ineligible"),
    "old_kubernetes": ("skipped", "ineligible"),
    "unregistered_subscription": ("skipped", "ineligible"),
    "arc_offline_no_extension": ("retry", "unreachable"),
    "flux_source_failing": ("skipped", "not-writable"),
    "helm_release_blocked": ("skipped", "not-writable"),
    "flux_config_pending": ("skipped", "not-writable"),
    "flux_status_stale": ("skipped", "not-writable"),
    "aks_stopped": ("retry", "stopped"),
    "read_error": ("retry", "read-error"),
    "conflict": ("skipped", "conflict"),
    "flux_v1": ("skipped", "flux-v1"),
    "flux_config_noncompliant": ("skipped", "not-writable"),
}


def expected_block(kind: str, env_tag: str | None) -> tuple[str, str] | None:
    if kind == "version_out_of_window" and env_tag == "prod":
        return ("skipped", "audit")  # the prod window is the audit policy's
    return BLOCKED.get(kind)


def test_a_dry_run_writes_nothing(start: Any, tmp_path: Path) -> None:
    with start() as emu:
        env = env_for(emu, tmp_path / "state")
        emu.admin.reset_stats()
        saved = tmp_path / "job-plan.json"
        result = run(["remediate", "-p", str(POLICIES), "--dry-run", "--out", str(saved)], env)
        assert result.exit_code == 0, result.stderr
        assert "Plan:" in result.stdout and "to create" in result.stdout
        assert "canary" in result.stdout  # the waves are shown with the plan
        assert "dry run: nothing was written" in result.stderr
        stats = emu.admin.stats()
        assert stats["writes"]["total"] == 0 and set(stats["requests"]["byMethod"]) == {"GET"}
        assert emu.admin.requests() == []
        document = json.loads(saved.read_text())
        assert document["kind"] == "FleetPlan" and document["summary"]["clusters"] > 0
        assert [w["name"] for w in document["rollout"]["waves"]] == ["canary", "early", "broad"]
        # the dry run's plan nudges stuck versions: what the job will really write
        reasons = [r for c in document["clusters"] for a in c["actions"] for r in a["reasons"]]
        assert any(r["nudge"] for r in reasons)


def test_an_enforce_run_fixes_every_unblocked_cluster(
    start: Any, snapshot: dict[str, Any], tmp_path: Path
) -> None:
    defects, facts = kinds(snapshot), clusters(snapshot)
    with start() as emu:
        env = env_for(emu, tmp_path / "state")
        result = run(["remediate", "-p", str(POLICIES), "--yes", "-o", "json"], env)
        assert result.exit_code == 0, result.stderr
        job = report(result)
        swept = run(["sweep", "-p", str(POLICIES), "-o", "json"], env)
        assert swept.exit_code == 0, swept.stderr
        after = {c["id"].lower(): c for c in report(swept)["clusters"]}
        written = writes_by_cluster(emu)

        listed = {c["id"].lower(): c for c in job["clusters"]}
        assert job["job"]["status"] == "succeeded"
        assert job["summary"]["failed"] == 0 and job["summary"]["fixed"] > 10
        problems = []
        for cid, kind in defects.items():
            block = expected_block(kind, facts[cid].tags.get("env"))
            state = after[cid]["state"]
            if block is None:
                if state not in (State.COMPLIANT, State.EXEMPT):
                    problems.append((kind, facts[cid].name, state, listed.get(cid)))
                continue
            entry = listed.get(cid)
            if entry is None or (entry["status"], entry["category"]) != block:
                problems.append((kind, facts[cid].name, "listed as", entry, "expected", block))
            if state in (State.COMPLIANT, State.EXEMPT):
                problems.append((kind, facts[cid].name, "blocked but compliant?"))
            if cid in written:
                problems.append((kind, facts[cid].name, "was written", written[cid]))
        assert problems == []
        # unreachable, stopped and unreadable clusters are the retry list, never failures
        retry = {defects[c.lower()] for c in job["retry"]}
        assert retry == {
            "arc_offline",
            "arc_offline_no_extension",
            "aks_stopped",
            "read_error",
        } & set(defects.values())
        # only enforce policies wrote, and only PUTs (no flag allows a delete here)
        assert {m for calls in written.values() for m, _ in calls} == {"PUT"}

        # the audit trail: every write with who, what, when, correlation id and outcome
        shown = run(["jobs", "show", job["job"]["id"], "-o", "json"], env)
        assert shown.exit_code == 0, shown.stderr
        record = json.loads(shown.stdout)
        writes = record["writes"]
        assert len(writes) == job["summary"]["writes"] == sum(map(len, written.values()))
        for w in writes:
            assert w["principal"] == "fleet-emulator-principal"
            assert w["bodyDigest"].startswith("sha256:") and w["outcome"] == "succeeded"
            assert w["correlationId"] and w["continuationToken"] and w["startedAt"]
            assert w["finishedAt"] and w["wave"] in ("canary", "early", "broad")
        assert record["job"]["status"] == "succeeded"
        assert {c["status"] for c in record["clusters"]} == {"fixed", "retry", "skipped"}
        one = writes[0]["clusterId"]
        audit = run(["jobs", "audit", "--cluster", one, "-o", "json"], env)
        assert [w["clusterId"] for w in json.loads(audit.stdout)] == [
            w["clusterId"] for w in writes if w["clusterId"] == one
        ]
        listing = run(["jobs", "list"], env)
        assert job["job"]["id"] in listing.stdout and "succeeded" in listing.stdout
        table = run(["jobs", "show", "latest"], env)
        assert "Left for retry" in table.stdout and "ARM writes" in table.stdout


def test_flux_v1_is_migrated_only_with_migrate_flux_v1(
    start: Any, snapshot: dict[str, Any], tmp_path: Path
) -> None:
    defects = kinds(snapshot)
    [v1] = [c for c, k in defects.items() if k == "flux_v1"]
    rollout = "    rollout:\n      maxConcurrency: 20\n      failureBudget: 0\n"
    policies = policy_dir(tmp_path, {"baseline.yaml": with_rollout(rollout, migrateFluxV1="true")})
    with start() as emu:
        env = env_for(emu, tmp_path / "state")
        result = run(
            [
                "remediate",
                "-p",
                str(policies),
                "--yes",
                "-o",
                "json",
                "--policy",
                "platform-baseline",
            ],
            env,
        )
        assert result.exit_code == 0, result.stderr
        job = report(result)
        [entry] = [c for c in job["clusters"] if c["id"].lower() == v1]
        assert entry["status"] == "fixed"
        calls = writes_by_cluster(emu)[v1]
        # the v1 configuration goes first, then the extension; --policy platform-baseline
        # leaves the flux configurations of the other policies alone
        assert [(m, p.rsplit("/", 2)[-2]) for m, p in calls] == [
            ("DELETE", "sourceControlConfigurations"),
            ("PUT", "extensions"),
        ]
        # a cluster-config run afterwards installs the configurations on the migrated cluster
        follow = run(["remediate", "-p", str(policies), "--yes", "-o", "json"], env)
        assert follow.exit_code == 0, follow.stderr
        swept = report(run(["sweep", "-p", str(policies), "-o", "json"], env))
        [after] = [c for c in swept["clusters"] if c["id"].lower() == v1]
        assert after["state"] == "compliant", after["findings"]


def test_planning_from_resource_graph_still_reads_arm_before_writing(
    start: Any, tmp_path: Path
) -> None:
    with start() as emu:
        env = env_for(emu, tmp_path / "state", FLEET_INVENTORY="graph")
        result = run(["remediate", "-p", str(POLICIES), "--yes", "-o", "json"], env)
        assert result.exit_code == 0, result.stderr
        job = report(result)
        assert job["job"]["status"] == "succeeded" and job["summary"]["fixed"] > 10
        stats = emu.admin.stats()
        assert stats["graphQueries"] > 0
        kinds = stats["requests"]["byResourceType"]
        # every write was preceded by a fresh ARM read of the resource it writes (one GET
        # each: the guard against a second writer), never a re-read of the whole cluster
        reads = sum(
            kinds.get(f"Microsoft.KubernetesConfiguration/{k}", 0)
            for k in ("extensions", "fluxConfigurations", "sourceControlConfigurations")
        )
        assert reads >= job["summary"]["writes"]
        assert kinds.get("Microsoft.ContainerService/managedClusters", 0) < job["summary"]["fixed"]
        # and the written clusters were verified through Resource Graph: ARM read none again
        assert job["summary"]["fixed"] == job["summary"]["toWrite"]
        reads, writes = job["reads"], job["summary"]["writes"]
        assert reads["verify"] == 0
        # one GET of each resource before its write; the operations polled when ARM said
        # (the emulator ends an operation on its second poll) and never read again after
        assert writes <= reads["prewrite"] <= writes + job["summary"]["toWrite"]
        assert writes <= reads["poll"] <= 2 * writes + 3

"""Continuous enforcement on the local engine: ``fleet enforce`` after a new cluster appears.

A first ``fleet enforce`` brings the generated fleet what the test policy creates; then a
cluster is added to the emulator and an existing one drifts, and a second run, with no person
involved, gives the new cluster its extension and flux configuration while the drifted one is
left alone (``remediation.auto`` creates only) until the policy says ``update: true``. The
automatic job is recorded like any job, its creator being the schedule.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.record.history import History
from tests.enforce.conftest import (
    aks_clusters,
    as_json,
    children,
    cli,
    env_of,
    new_aks,
    write_policy,
)

AUTO = "    auto: {create: true, maxClustersPerRun: 50}\n"


def _enforce(policies: Path, env: dict[str, str]) -> dict[str, Any]:
    result = cli(["enforce", "-p", str(policies), "-o", "json"], env)
    assert result.exit_code == 0, result.output
    runs = as_json(result)
    assert len(runs["jobs"]) == 1
    job: dict[str, Any] = runs["jobs"][0]
    return job


def _drift_branch(emu: Any, cluster_id: str) -> None:
    config = copy.deepcopy(children(emu, cluster_id)["fluxconfigurations/auto-apps"])
    config["properties"]["gitRepository"]["repositoryRef"] = {"branch": "dev"}
    emu.admin.put_resource(config)


def _branch(emu: Any, cluster_id: str) -> str:
    config = children(emu, cluster_id)["fluxconfigurations/auto-apps"]
    return str(config["properties"]["gitRepository"]["repositoryRef"]["branch"])


def test_a_new_cluster_gets_flux_with_no_person_and_drift_waits_for_update(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    policies = write_policy(tmp_path, AUTO)
    with start() as emu:
        env = env_of(emu, tmp_path)
        first = _enforce(policies, env)
        assert first["job"]["policy"] == "auto-apps"
        existing = aks_clusters(emu)
        drifted = next(
            c["id"] for c in existing if "fluxconfigurations/auto-apps" in children(emu, c["id"])
        )
        _drift_branch(emu, drifted)
        new = new_aks(emu, existing[0], "aks-new-00042")
        assert children(emu, new) == {}

        second = _enforce(policies, env)
        by_id = {c["id"].lower(): c for c in second["clusters"]}
        assert by_id[new.lower()]["status"] == "fixed"
        got = children(emu, new)
        assert {"extensions/flux", "fluxconfigurations/auto-apps"} <= set(got)
        assert [w["action"] for w in by_id[new.lower()]["writes"]] == [
            "put_extension",
            "put_flux_config",
        ]
        left = by_id[drifted.lower()]
        assert (left["status"], left["category"]) == ("skipped", "auto-limits")
        assert "update: true" in left["reason"]
        assert _branch(emu, drifted) == "dev"  # not touched
        with History(env["FLEET_DATABASE_URL"]) as history:
            job = history.get_job(second["job"]["id"])
            assert job is not None
            created = job["options"]["createdBy"]
            assert (created["name"], created["via"]) == ("schedule:auto-apps", "schedule")
            assert job["options"]["auto"]["limits"]["update"] is False
            starts = history.events(job_id=job["id"], action="job.start")
            assert [e["actor"]["name"] for e in starts] == ["schedule:auto-apps"]
            assert starts[0]["actor"]["via"] == "schedule"

        updating = write_policy(tmp_path, "    auto: {create: true, update: true}\n")
        third = _enforce(updating, env)
        fixed = {c["id"].lower() for c in third["clusters"] if c["status"] == "fixed"}
        assert drifted.lower() in fixed
        assert _branch(emu, drifted) == "main"


def test_an_automatic_run_writes_at_most_max_clusters_per_run(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    policies = write_policy(tmp_path, "    auto: {maxClustersPerRun: 2}\n")
    with start() as emu:
        env = env_of(emu, tmp_path)
        emu.admin.set_clock("2027-04-01T10:15:00Z")
        job = _enforce(policies, env)
        statuses = [c["status"] for c in job["clusters"]]
        assert statuses.count("fixed") == 2
        waiting = [c for c in job["clusters"] if c["category"] == "run-limit"]
        assert waiting and {c["status"] for c in waiting} == {"deferred"}
        assert {c["nextWindow"] for c in waiting} == {"2027-04-01T12:00:00+00:00"}
        assert "maxClustersPerRun (2)" in waiting[0]["reason"]
        assert job["job"]["status"] == "completed"
        again = _enforce(policies, env)
        assert [c["status"] for c in again["clusters"]].count("fixed") == 2

"""Saved plans (applied exactly, refused when stale), the retry list, and the safety rails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import POLICIES
from tests.helpers.cli import remediate_args
from tests.remediate.conftest import (
    clusters,
    env_for,
    kinds,
    report,
    run,
    writes_by_cluster,
)


def _resource(emu: Any, rid: str) -> dict[str, Any]:
    [found] = [r for r in emu.admin.snapshot()["resources"] if r["id"].lower() == rid.lower()]
    return dict(found)


def _saved_plan(env: dict[str, str], path: Path) -> dict[str, Any]:
    result = run(["plan", "-p", str(POLICIES), "-o", "json", "--out", str(path)], env)
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_a_saved_plan_is_applied_exactly(start: Any, tmp_path: Path) -> None:
    with start() as emu:
        env = env_for(emu, tmp_path / "state")
        document = _saved_plan(env, tmp_path / "plan.json")
        planned = {
            ("PUT" if a["method"] == "PUT" else "DELETE", a["resourceId"].lower())
            for c in document["clusters"]
            for a in c["actions"]
        }
        assert planned
        result = run(remediate_args(POLICIES, "--plan", str(tmp_path / "plan.json")), env)
        assert result.exit_code == 0, result.stderr
        job = report(result)
        assert job["job"]["mode"] == "plan" and job["summary"]["failed"] == 0
        sent = {(r["method"], r["path"].split("?")[0].lower()) for r in emu.admin.requests()}
        assert sent == planned


def test_a_stale_plan_is_refused_naming_the_changed_clusters(start: Any, tmp_path: Path) -> None:
    with start() as emu:
        env = env_for(emu, tmp_path / "state")
        document = _saved_plan(env, tmp_path / "plan.json")
        [changed] = [
            c
            for c in document["clusters"]
            if any(a["kind"] == "put_flux_config" and a["change"] == "~" for a in c["actions"])
        ][:1]
        config_id = next(
            a["resourceId"] for a in changed["actions"] if a["kind"] == "put_flux_config"
        )
        config = _resource(emu, config_id)
        config["properties"]["gitRepository"]["repositoryRef"] = {"branch": "hotfix"}
        emu.admin.put_resource(config)  # someone changed the cluster since the plan
        emu.admin.reset_stats()
        result = run(
            ["remediate", "-p", str(POLICIES), "--plan", str(tmp_path / "plan.json"), "--yes"], env
        )
        assert result.exit_code == 2, result.stderr
        assert "the plan is stale: 1 cluster(s) changed" in result.stderr
        assert f"changed: {changed['clusterName']}" in result.stderr
        assert emu.admin.stats()["writes"]["total"] == 0
        # changed policies make a plan stale too
        other = tmp_path / "other"
        other.mkdir()
        for f in POLICIES.glob("*.yaml"):
            text = f.read_text().replace("syncIntervalInSeconds: 600", "syncIntervalInSeconds: 300")
            (other / f.name).write_text(text)
        refused = run(
            ["remediate", "-p", str(other), "--plan", str(tmp_path / "plan.json"), "--yes"], env
        )
        assert refused.exit_code == 2 and "the policies changed" in refused.stderr


def test_the_retry_list_gets_the_same_desired_state_once_clusters_are_back(
    start: Any, snapshot: dict[str, Any], tmp_path: Path
) -> None:
    defects, facts = kinds(snapshot), clusters(snapshot)
    stopped = sorted(c for c, k in defects.items() if k == "aks_stopped")[0]
    offline = sorted(c for c, k in defects.items() if k == "arc_offline")[0]
    with start() as emu:
        env = env_for(emu, tmp_path / "state")
        # the stopped cluster also drifts: a retry has something to write there
        [ext] = [
            r
            for r in emu.admin.snapshot()["resources"]
            if r["id"].lower().startswith(stopped + "/providers/")
            and r["type"].endswith("/extensions")
        ]
        ext["properties"]["releaseTrain"] = "Preview"
        emu.admin.put_resource(ext)
        first = report(run(remediate_args(POLICIES), env))
        assert {facts[c.lower()].name for c in first["retry"]} >= {
            facts[stopped].name,
            facts[offline].name,
        }
        stored = report(run(["jobs", "show", first["job"]["id"], "-o", "json"], env))
        [row] = [c for c in stored["clusters"] if c["clusterId"].lower() == stopped]
        assert row["status"] == "retry"
        assert [(a["kind"], a["resourceId"].lower()) for a in row["actions"]] == [
            ("put_extension", ext["id"].lower())
        ]  # what it would get, kept for the retry
        assert "configurationProtectedSettings" not in json.dumps(row["actions"])

        # the clusters come back: started, reconnected, readable again
        aks = _resource(emu, stopped)
        aks["properties"]["powerState"] = {"code": "Running"}
        emu.admin.put_resource(aks)
        arc = _resource(emu, offline)
        arc["properties"]["connectivityStatus"] = "Connected"
        arc["properties"]["lastConnectivityTime"] = emu.admin.clock().isoformat()
        emu.admin.put_resource(arc)
        # ...and their fluxconfig agents report again (else their old status is stale)
        for r in emu.admin.snapshot()["resources"]:
            if r["id"].lower().split("/providers/microsoft.kubernetesconfiguration/")[0] in (
                offline,
                stopped,
            ) and r["type"].endswith("/fluxConfigurations"):
                r["properties"]["statusUpdatedAt"] = arc["properties"]["lastConnectivityTime"]
                emu.admin.put_resource(r)
        emu.admin.clear_faults()
        emu.admin.call("DELETE", "requests")

        result = run(["remediate", "--retry", first["job"]["id"], "--yes", "-o", "json"], env)
        assert result.exit_code == 0, result.stderr
        retry = report(result)
        assert retry["job"]["mode"] == "retry" and retry["job"]["retryOf"] == first["job"]["id"]
        assert {c["id"].lower() for c in retry["clusters"]} == {c.lower() for c in first["retry"]}
        by_id = {c["id"].lower(): c for c in retry["clusters"]}
        assert by_id[stopped]["status"] == "fixed"
        assert by_id[offline]["status"] == "skipped"  # reconnected and already right
        assert set(writes_by_cluster(emu)) == {stopped}
        [write] = retry["clusters"][list(by_id).index(stopped)]["writes"]
        assert (write["action"], write["resource"].lower()) == ("put_extension", ext["id"].lower())
        swept = report(run(["sweep", "-p", str(POLICIES), "-o", "json"], env))
        states = {c["id"].lower(): c["state"] for c in swept["clusters"]}
        assert states[stopped] == states[offline] == "compliant"


def test_safety_rails(start: Any, tmp_path: Path) -> None:
    with start() as emu:
        env = env_for(emu, tmp_path / "state", FLEET_MAX_CLUSTERS=3)
        over = run(["remediate", "-p", str(POLICIES), "--yes"], env)
        assert over.exit_code == 2
        assert "more than the limit of 3 (FLEET_MAX_CLUSTERS)" in over.stderr
        assert "Pass --max-clusters 16 to allow it" in over.stderr.replace("\n", " ")
        unasked = run(["remediate", "-p", str(POLICIES), "--max-clusters", "100"], env)
        assert unasked.exit_code == 2 and "refusing to write without --yes" in unasked.stderr
        unknown = run(["remediate", "-p", str(POLICIES), "--policy", "nope", "--yes"], env)
        assert unknown.exit_code == 2 and "no policy named 'nope'" in unknown.stderr
        audit = run(["remediate", "-p", str(POLICIES), "--policy", "flux-version-audit"], env)
        assert audit.exit_code == 2 and "audit mode: it never writes" in audit.stderr
        both = run(["remediate", "-p", str(POLICIES), "--plan", "x.json", "--retry", "y"], env)
        assert both.exit_code == 2
        assert emu.admin.stats()["writes"]["total"] == 0

"""Least privilege, beyond tests/e2e/test_rbac.py (an ARM audit under the read-only role):

- the Resource Graph inventory (``FLEET_INVENTORY=graph``) works under the read-only role too;
- a remediation under the read-only (audit) role fails cleanly: every cluster it tries to
  write is ``failed`` with ARM's ``AuthorizationFailed`` (403) recorded in the job and in the
  audit trail, nothing is written, and the job is not ``succeeded``;
- the same job under the remediate role (``fleet rbac --mode remediate``) succeeds with not a
  single 403.

The emulator enforces a role per principal like ARM (403 ``AuthorizationFailed``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleet.azure.credentials import EmulatorCredential
from fleet.core.permissions import READ_ACTIONS, role_definition
from tests.conftest import POLICIES
from tests.faults.conftest import (
    check_converged,
    check_fixed_is_fixed,
    cli,
    env_of,
    facts_of,
    job_outcomes,
    remediate,
    sweep,
)
from tests.remediate.conftest import policy_dir, with_rollout

PRINCIPAL = EmulatorCredential().principal
ROLLOUT = (
    "    rollout:\n      waves:\n        - {name: all, percent: 100}\n"
    "      maxConcurrency: 8\n      failureBudget: 100%\n"
)


def role(mode: str) -> list[str]:
    result = cli(["rbac", "--mode", mode, "--scope", "/subscriptions/x"], {})
    assert result.exit_code == 0, result.stderr
    actions: list[str] = json.loads(result.stdout)["Actions"]
    assert actions == role_definition(mode, ["/subscriptions/x"])["Actions"]  # type: ignore[arg-type]
    return actions


def states(report: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {
        c["id"]: (c["state"], sorted(f["code"] for f in c["findings"])) for c in report["clusters"]
    }


def forbidden(emu: Any) -> int:
    return int(emu.admin.stats()["responses"]["byStatus"].get("403", 0))


def test_the_graph_inventory_works_with_the_read_only_role(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    emu = emulator_factory(graph_quota=1000).running
    unrestricted = sweep(emu, tmp_path / "free", FLEET_INVENTORY="graph")
    emu.admin.set_role(PRINCIPAL, role("audit"))
    emu.admin.reset_stats()
    report = sweep(emu, tmp_path / "state", FLEET_INVENTORY="graph")
    assert report["sweep"]["inventory"] == "graph"
    assert emu.admin.stats()["graphQueries"] > 0  # the bulk path really ran
    assert forbidden(emu) == 0
    assert len(report["clusters"]) == len(facts_of(fleet_snapshot))
    assert states(report) == states(unrestricted)
    # and enforcement is real: without Resource Graph's read action, the graph path is refused
    emu.admin.set_role(
        PRINCIPAL, [a for a in READ_ACTIONS if a != "Microsoft.ResourceGraph/resources/read"]
    )
    denied = cli(
        ["sweep", "-p", str(POLICIES), "-o", "json"],
        env_of(emu, tmp_path / "denied", FLEET_INVENTORY="graph"),
    )
    assert denied.exit_code == 3  # Azure refused the credentials: a one-line hint, no traceback
    assert "Resource Graph: HTTP 403 AuthorizationFailed" in denied.stderr
    assert "fleet rbac" in denied.stderr and "Traceback" not in denied.stderr


def _remediate_as(
    role_name: str, emulator_factory: Any, tmp_path: Path
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A remediation job run by the fleet principal holding only ``role_name``; it must exit 0."""
    emu = emulator_factory().running
    policies = policy_dir(tmp_path, {"baseline.yaml": with_rollout(ROLLOUT)})
    emu.admin.set_role(PRINCIPAL, role(role_name))
    result, job, shown = remediate(emu, tmp_path / "state", policies)
    assert result.exit_code == 0, result.stderr
    return emu, job, shown


def test_a_remediation_under_the_read_only_role_fails_cleanly(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    # the job runs (exit 0); its clusters fail
    emu, job, shown = _remediate_as("audit", emulator_factory, tmp_path)
    assert job["job"]["status"] != "succeeded"
    statuses = job_outcomes(job, shown, fleet_snapshot)
    attempted = [c for c in job["clusters"] if c["writes"]]
    assert attempted and "fixed" not in statuses.values()
    for c in attempted:
        assert c["status"] == "failed", c
        assert [w["errorCode"] for w in c["writes"]] == ["AuthorizationFailed"], c
        assert "AuthorizationFailed" in c["reason"]
    assert shown["writes"] and all(
        w["outcome"] == "failed"
        and w["statusCode"] == 403
        and w["errorCode"] == "AuthorizationFailed"
        for w in shown["writes"]
    )
    # ARM refused every one: the fleet is exactly as it was
    assert emu.admin.snapshot()["resources"] == fleet_snapshot["resources"]
    assert forbidden(emu) == len(shown["writes"])
    table = cli(["jobs", "show", job["job"]["id"]], env_of(emu, tmp_path / "state"))
    assert "AuthorizationFailed" in table.stdout


def test_the_same_remediation_under_the_remediate_role_succeeds(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    emu, job, shown = _remediate_as("remediate", emulator_factory, tmp_path)
    assert job["job"]["status"] == "succeeded"
    assert forbidden(emu) == 0
    statuses = job_outcomes(job, shown, fleet_snapshot)
    after = sweep(emu, tmp_path / "state")
    check_fixed_is_fixed(statuses, after)
    check_converged(after, fleet_snapshot)

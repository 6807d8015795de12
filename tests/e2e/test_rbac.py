"""Least privilege: ``fleet rbac`` lists exactly what fleet uses, and an audit works with it.

The emulator enforces a role per token (403 AuthorizationFailed like ARM), so these tests prove
the read-only role is enough for a sweep, and that enforcement is real (one missing action
breaks the sweep).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.azure.credentials import EmulatorCredential
from fleet.cli import app
from fleet.core.permissions import READ_ACTIONS, WRITE_ACTIONS, role_definition
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.conftest import POLICIES, emulator_env

PRINCIPAL = EmulatorCredential().principal


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(
        generate(clusters=40, subscriptions=2, seed=5), throttle="off", retry_after=0
    ) as emu:
        yield emu


def sweep(emu: RunningEmulator, tmp_path: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["sweep", "-p", str(POLICIES), "-o", "json"], env=emulator_env(emu, tmp_path)
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def states(report: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {
        c["id"]: (c["state"], sorted(f["code"] for f in c["findings"])) for c in report["clusters"]
    }


def test_the_role_json_is_an_azure_custom_role() -> None:
    result = CliRunner().invoke(app, ["rbac", "--mode", "audit", "--scope", "/subscriptions/abc"])
    assert result.exit_code == 0
    role = json.loads(result.stdout)
    assert role["IsCustom"] is True
    assert role["Actions"] == list(READ_ACTIONS)
    assert role["AssignableScopes"] == ["/subscriptions/abc"]
    assert not any(a.endswith(("/write", "/delete")) for a in role["Actions"])
    remediate = role_definition("remediate", ["/subscriptions/abc"])
    assert set(READ_ACTIONS) < set(remediate["Actions"])
    assert set(WRITE_ACTIONS) <= set(remediate["Actions"])


def test_scopes_come_from_the_policies() -> None:
    result = CliRunner().invoke(app, ["rbac", "-p", str(POLICIES)])
    assert result.exit_code == 0
    # the example policies target "*": no subscription can be named, so the placeholder stays
    assert "placeholder" in result.stderr


def test_key_vaults_the_policies_read_are_named_with_their_data_plane_role(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "kv.yaml"
    policy.write_text(
        (POLICIES / "baseline.yaml")
        .read_text()
        .replace(
            '      multiTenancy.enforce: "true"\n',
            '      multiTenancy.enforce: "true"\n'
            "    configurationProtectedSettings:\n"
            "      token: {fromKeyVault: {vault: kv-platform, name: telemetry}}\n",
        )
    )
    result = CliRunner().invoke(app, ["rbac", "--scope", "/subscriptions/abc", "-p", str(policy)])
    assert result.exit_code == 0, result.stderr
    role = json.loads(result.stdout)  # stdout stays the role alone
    assert role["DataActions"] == []  # never a subscription-wide right to read secrets
    assert "'Key Vault Secrets User' on vault kv-platform" in " ".join(result.stderr.split())


def test_an_audit_sweep_works_with_the_read_only_role(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.admin.clear_roles()
    unrestricted = sweep(emulator, tmp_path / "a")
    emulator.admin.set_role(PRINCIPAL, list(READ_ACTIONS))
    try:
        emulator.admin.reset_stats()
        restricted = sweep(emulator, tmp_path / "b")
        forbidden = emulator.admin.stats()["responses"]["byStatus"].get("403", 0)
    finally:
        emulator.admin.clear_roles()
    assert forbidden == 0
    assert states(restricted) == states(unrestricted)


def test_enforcement_is_real_one_missing_action_breaks_the_sweep(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    missing = "Microsoft.KubernetesConfiguration/sourceControlConfigurations/read"
    emulator.admin.set_role(PRINCIPAL, [a for a in READ_ACTIONS if a != missing])
    try:
        report = sweep(emulator, tmp_path)
    finally:
        emulator.admin.clear_roles()
    errors = [c for c in report["clusters"] if c["state"] == "error"]
    judged = [c for c in report["clusters"] if c["state"] != "exempt"]  # exempt stays exempt
    assert errors and len(errors) == len(judged)
    assert "AuthorizationFailed" in errors[0]["findings"][0]["message"]

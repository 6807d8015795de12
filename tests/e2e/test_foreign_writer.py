"""Attribution end to end: the real CLI and SDK against the emulator, which stamps
``systemData`` on every write with the caller's identity from its token, as ARM does.

A generated fleet (written by fleet's own principal) has no ``FOREIGN_WRITER``. A flux
configuration someone else changes through ARM is ``FOREIGN_WRITER`` with who and when, and
its drift names the same writer; once fleet's own principal writes it again, it is not. The
recorded report carries how long each finding has been seen (``firstSeen``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.kubernetesconfiguration.fluxconfigurations import (
    KubernetesConfigurationFluxConfigurationsMgmtClient,
)
from typer.testing import CliRunner

from fleet.azure.credentials import EmulatorCredential
from fleet.cli import app
from fleet.core.ids import CLUSTER_PROVIDERS, ClusterId
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.conftest import POLICIES, emulator_env
from tests.emulator.conftest import FakeCredential, client_kwargs, jwt

MALLORY = "mallory@contoso.com"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(
        generate(clusters=24, subscriptions=1, seed=5), retry_after=0, lro_polls=1
    ) as emu:
        yield emu


def sweep(emu: RunningEmulator, state: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["sweep", "-p", str(POLICIES), "-o", "json"], env=emulator_env(emu, state)
    )
    assert result.exit_code in (0, 1), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def recorded(emu: RunningEmulator, state: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["report", "show", "latest", "-f", "json"], env=emulator_env(emu, state)
    )
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def rewrite(emu: RunningEmulator, credential: Any, config_id: str, branch: str) -> None:
    """Read a flux configuration and write it back with another branch, as ``credential``."""
    parent, name = config_id.rsplit("/providers/Microsoft.KubernetesConfiguration/", 1)
    cid = ClusterId.parse(parent)
    client = KubernetesConfigurationFluxConfigurationsMgmtClient(
        credential, cid.subscription_id, **client_kwargs(emu)
    )
    provider = CLUSTER_PROVIDERS[cid.cluster_type].split("/")[0]
    args = (cid.resource_group, provider, cid.cluster_type, cid.name)
    config_name = name.split("/", 1)[1]
    ops = client.flux_configurations
    config = ops.get(*args, config_name)
    config.git_repository.repository_ref.branch = branch
    ops.begin_create_or_update(*args, config_name, config, polling_interval=0).result()


def foreign(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (c["name"], f)
        for c in report["clusters"]
        for f in c["findings"]
        if f["code"] == "FOREIGN_WRITER"
    ]


def test_someone_elses_write_is_a_foreign_writer_and_fleets_is_not(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    first = sweep(emulator, tmp_path)
    assert foreign(first) == []  # the generated fleet was written by fleet's own principal
    target = next(
        c
        for c in first["clusters"]
        if c["state"] == "compliant" and any(fc["commit"] for fc in c["fluxCommits"])
    )
    name = target["fluxCommits"][0]["configuration"]
    config_id = (
        f"{target['id']}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/{name}"
    )

    intruder = FakeCredential(jwt(oid="0b5e-mallory", upn=MALLORY, tid="t"))
    rewrite(emulator, intruder, config_id, "hotfix")
    second = sweep(emulator, tmp_path)
    found = foreign(second)
    assert [n for n, _ in found] == [target["name"]]
    (_, fw) = found[0]
    assert fw["resource"].lower() == config_id.lower()
    assert fw["severity"] == "warning"
    assert fw["lastModified"]["by"] == MALLORY and fw["lastModified"]["byType"] == "User"
    assert fw["lastModified"]["at"] and MALLORY in fw["message"]
    cluster = next(c for c in second["clusters"] if c["id"] == target["id"])
    assert cluster["state"] == "noncompliant"  # because of the drift, not of the warning
    drift = next(f for f in cluster["findings"] if f["code"] == "FLUX_CONFIG_DRIFT")
    assert drift["actual"] == "hotfix" and drift["lastModified"] == fw["lastModified"]
    # fleet sweep -o json prints the age the history now keeps, as fleet report does.
    assert drift["firstSeen"][:10] == second["sweep"]["startedAt"][:10]
    # The history keeps when each finding was first seen: this sweep, for the new drift.
    kept = recorded(emulator, tmp_path)
    stored = next(c for c in kept["clusters"] if c["id"] == target["id"])
    ages = {f["code"]: f["firstSeen"] for f in stored["findings"]}
    assert (
        ages["FLUX_CONFIG_DRIFT"]
        and ages["FLUX_CONFIG_DRIFT"][:10] == kept["sweep"]["startedAt"][:10]
    )

    # Fleet's own principal (its emulator credential) writes it back: nobody foreign is left.
    rewrite(emulator, EmulatorCredential(), config_id, drift["desired"])
    third = sweep(emulator, tmp_path)
    assert foreign(third) == []
    assert next(c for c in third["clusters"] if c["id"] == target["id"])["state"] == "compliant"

    # FLEET_PRINCIPAL_ID names fleet's identities explicitly: then fleet's own token is not
    # one of them, and every resource it manages is someone else's.
    env = emulator_env(emulator, tmp_path, FLEET_PRINCIPAL_ID="some-other-app,another-id")
    result = CliRunner().invoke(app, ["sweep", "-p", str(POLICIES), "-o", "json"], env=env)
    assert foreign(json.loads(result.stdout))

"""Shared set-up of the enforcement and window tests: a small generated fleet on a fast
emulator, one policy written per test, the real CLI in-process, and the emulator's clock as
the job's clock (``FLEET_CLOCK=emulator``), so a test moves time for fleet and ARM at once."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.conftest import emulator_env

FAST = {"retry_after": 0, "lro_polls": 1, "reconcile_seconds": 0, "throttle": "off"}
AKS = "Microsoft.ContainerService/managedClusters"
MAINTENANCE = "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"

POLICY = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: auto-apps
spec:
  mode: enforce
  priority: 100
  targets:
    subscriptions: ["*"]
  extension:
    name: flux
    autoUpgradeMinorVersion: true
    releaseTrain: Stable
  fluxConfigurations:
    - name: auto-apps
      scope: cluster
      namespace: auto-apps
      gitRepository:
        url: https://github.com/fleet-examples/auto-apps
        repositoryRef: {branch: main}
      kustomizations:
        apps: {path: ./apps, prune: true}
  remediation:
    schedule: "0 */6 * * *"
    rollout:
      failureBudget: 0
"""


@pytest.fixture(scope="session")
def fleet_snapshot() -> dict[str, Any]:
    return generate(clusters=8, subscriptions=1, seed=11)


@pytest.fixture
def start(fleet_snapshot: dict[str, Any]) -> Callable[..., Any]:
    """``with start() as emu``: an emulator with a private copy of the fleet."""

    @contextmanager
    def _start(**options: Any) -> Iterator[RunningEmulator]:
        with running_emulator(copy.deepcopy(fleet_snapshot), **{**FAST, **options}) as emu:
            yield emu

    return _start


def write_policy(tmp: Path, remediation: str = "") -> Path:
    """The test policy with extra lines under ``remediation:`` (indented four spaces)."""
    folder = tmp / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    text = POLICY.replace("  remediation:\n", "  remediation:\n" + remediation, 1)
    (folder / "auto-apps.yaml").write_text(text)
    return folder


def env_of(emu: RunningEmulator, tmp: Path) -> dict[str, str]:
    return emulator_env(emu, tmp / "state", FLEET_CLOCK="emulator")


def cli(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def as_json(result: Any) -> dict[str, Any]:
    assert result.stdout.strip(), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def aks_clusters(emu: RunningEmulator) -> list[dict[str, Any]]:
    return [r for r in emu.admin.snapshot()["resources"] if r["type"] == AKS]


def children(emu: RunningEmulator, cluster_id: str) -> dict[str, dict[str, Any]]:
    """The cluster's KubernetesConfiguration children by ``kind/name``."""
    prefix = cluster_id.lower() + "/providers/microsoft.kubernetesconfiguration/"
    return {
        r["id"].lower()[len(prefix) :]: r
        for r in emu.admin.snapshot()["resources"]
        if r["id"].lower().startswith(prefix)
    }


def new_aks(emu: RunningEmulator, like: dict[str, Any], name: str) -> str:
    """Add a cluster like ``like`` (same group, nothing installed) to the running emulator."""
    cluster = copy.deepcopy(like)
    cluster["id"] = like["id"].rsplit("/", 1)[0] + "/" + name
    cluster["name"] = name
    emu.admin.put_resource(cluster)
    return str(cluster["id"])


def put_maintenance(emu: RunningEmulator, cluster_id: str, name: str, props: Any) -> None:
    emu.admin.put_resource(
        {
            "id": f"{cluster_id}/maintenanceConfigurations/{name}",
            "name": name,
            "type": MAINTENANCE,
            "properties": props,
        }
    )

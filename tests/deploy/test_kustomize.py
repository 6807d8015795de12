"""deploy/: the kustomize base renders (``kubectl kustomize``), every object is valid against
the Kubernetes schemas (``kubernetes-validate``, strict: no unknown fields), and the base holds
what a deployment needs: the API with probes, one worker deployment per Celery queue, the
beat, resources on every container, a PodDisruptionBudget, a NetworkPolicy, and a service
account annotated for Azure workload identity; every command it runs exists.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from typing import Any

import kubernetes_validate
from ruamel.yaml import YAML
from typer.testing import CliRunner

from fleet.cli import app
from fleet.settings import Settings
from tests.conftest import REPO, require
from workers.app import QUEUES

#: The Kubernetes version whose schemas the objects are checked against (AKS's current ones).
KUBERNETES = "1.31"


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    require(shutil.which("kubectl") is not None, "kubectl is not installed")
    result = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in YAML(typ="safe").load_all(result.stdout) if d)


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered() if o["kind"] == kind}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


def test_every_object_is_valid_against_the_kubernetes_schemas() -> None:
    objects = rendered()
    assert len(objects) >= 12
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        assert obj["metadata"].get("namespace", "fleet") == "fleet", obj["metadata"]["name"]


def test_the_api_a_worker_per_queue_and_the_beat() -> None:
    deployments = of_kind("Deployment")
    queues = set()
    for name, d in deployments.items():
        for c in containers(d):
            assert c["resources"]["requests"] and c["resources"]["limits"], name
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            if c["command"][:4] == ["celery", "-A", "workers", "worker"]:
                queues.update(c["command"][c["command"].index("-Q") + 1].split(","))
        pod = d["spec"]["template"]
        assert pod["spec"]["serviceAccountName"] == "fleet", name
        assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true", name
    assert queues == set(QUEUES)
    api = containers(deployments["fleet-api"])[0]
    assert api["command"][:2] == ["fleet", "serve"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert api[probe]["httpGet"]["path"] == "/healthz"
    beat = containers(deployments["fleet-beat"])[0]
    assert beat["command"][3] == "beat" and deployments["fleet-beat"]["spec"]["replicas"] == 1


def test_disruption_budget_network_policy_and_workload_identity() -> None:
    assert "fleet-api" in of_kind("PodDisruptionBudget")
    policy = next(iter(of_kind("NetworkPolicy").values()))
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    account = of_kind("ServiceAccount")["fleet"]
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]
    externals = {n: s["spec"].get("type") for n, s in of_kind("Service").items()}
    assert externals["redis"] == externals["postgres"] == "ExternalName"


def test_every_setting_and_command_exists() -> None:
    known = {f"FLEET_{n.upper()}" for n in Settings.model_fields}
    for name, value in of_kind("ConfigMap")["fleet-settings"]["data"].items():
        assert name in known, name
        assert value is not None
    for d in of_kind("Deployment").values():
        for c in containers(d):
            assert {e["name"] for e in c.get("env", [])} <= known
    serve = containers(of_kind("Deployment")["fleet-api"])[0]["command"]
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in (w for w in serve if w.startswith("--")):
        assert option in result.output, option

"""The example policies are the scenario's (docs/scenario.md): names, modes, priorities,
targets and declarations, which the emulator's generator and the end-to-end tests rely on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fleet.core.clusters import ClusterFacts
from fleet.policy.loading import PolicySet, load
from fleet.select.selection import applicable, subscriptions_in_scope

POLICIES = Path(__file__).resolve().parents[2] / "policies"
TODAY = date(2026, 11, 25)
SUB = "00000000-0000-0000-0000-000000000003"


def example() -> PolicySet:
    return load([POLICIES], today=TODAY)


def cluster(name: str, rg: str, tags: dict[str, str], arc: bool = False) -> ClusterFacts:
    provider = (
        "Microsoft.Kubernetes/connectedClusters"
        if arc
        else ("Microsoft.ContainerService/managedClusters")
    )
    return ClusterFacts(
        id=f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{provider}/{name}",
        name=name,
        cluster_type="connectedClusters" if arc else "managedClusters",
        subscription_id=SUB,
        resource_group=rg,
        location="westeurope",
        tags=tags,
    )


def test_the_six_policies_of_the_scenario() -> None:
    policy_set = example()
    table = {
        p.name: (Path(policy_set.origins[p.name][0]).name, p.spec.mode, p.spec.priority)
        for p in policy_set
    }
    assert table == {
        "platform-baseline": ("baseline.yaml", "enforce", 100),
        "cluster-config": ("cluster-config.yaml", "enforce", 50),
        "team-alpha": ("team-alpha.yaml", "enforce", 50),
        "arc-edge": ("arc-edge.yaml", "enforce", 60),
        "flux-version-audit": ("flux-version-audit.yaml", "audit", 200),
        "shared-tenancy": ("shared-tenancy.yaml", "enforce", 100),
    }
    assert policy_set.warnings == ()
    assert subscriptions_in_scope(policy_set) is None


def test_baseline_declarations() -> None:
    baseline = example().by_name("platform-baseline")
    ext = baseline.spec.extension
    assert ext is not None
    assert (ext.name, ext.auto_upgrade_minor_version, ext.release_train, ext.version_window) == (
        "flux",
        True,
        "Stable",
        2,
    )
    assert ext.configuration_settings == {"multiTenancy.enforce": "true"}
    rollout = baseline.spec.remediation.rollout
    assert [(w.name, w.percent) for w in rollout.waves or []] == [
        ("canary", None),
        ("early", 10),
        ("broad", 100),
    ]
    assert (rollout.failure_budget, rollout.max_concurrency) == ("5%", 50)
    (exemption,) = baseline.spec.exemptions
    assert (exemption.cluster, exemption.reason, exemption.expires_on) == (
        "*/managedClusters/aks-lab-*",
        "lab clusters",
        date(2099, 12, 31),
    )


def test_flux_configurations() -> None:
    policy_set = example()
    configs = {
        p.name: [
            (
                c.name,
                c.scope,
                c.namespace,
                c.git_repository.url if c.git_repository else None,
                sorted(c.kustomizations or {}),
            )
            for c in p.spec.flux_configurations
        ]
        for p in policy_set
    }
    assert configs["cluster-config"] == [
        (
            "cluster-config",
            "cluster",
            "cluster-config",
            "https://github.com/fluxcd/flux2-kustomize-helm-example",
            ["apps", "infra"],
        )
    ]
    assert configs["team-alpha"] == [
        (
            "team-alpha",
            "namespace",
            "team-alpha",
            "https://github.com/fleet-examples/team-alpha-apps",
            ["apps"],
        )
    ]
    assert configs["arc-edge"] == [
        (
            "edge-baseline",
            "cluster",
            "edge-system",
            "https://github.com/fleet-examples/edge-baseline",
            ["base"],
        )
    ]
    apps = policy_set.by_name("cluster-config").spec.flux_configurations[0].kustomizations
    assert apps is not None and apps["apps"].depends_on == ["infra"]


def names(facts: ClusterFacts) -> list[str]:
    return [a.policy.name for a in applicable(example(), facts, today=TODAY)]


def test_selection_over_the_scenario_fleet() -> None:
    prod = cluster("aks-prod-00001", "rg-prod-weu-1", {"env": "prod", "ring": "2", "team": "alpha"})
    assert names(prod) == [
        "flux-version-audit",
        "platform-baseline",
        "cluster-config",
        "team-alpha",
    ]
    dev_alpha = cluster("aks-dev-00002", "rg-dev-1", {"env": "dev", "ring": "2", "team": "alpha"})
    assert names(dev_alpha) == ["platform-baseline"]  # team-alpha excludes env: dev
    edge = cluster("arc-staging-00003", "rg-edge-2", {"env": "staging", "ring": "1"}, arc=True)
    assert names(edge) == ["platform-baseline", "arc-edge", "cluster-config"]
    shared = cluster("aks-prod-00004", "rg-prod-weu-1", {"env": "prod", "tenancy": "shared"})
    assert names(shared) == [
        "flux-version-audit",
        "platform-baseline",
        "shared-tenancy",
        "cluster-config",
    ]
    lab = cluster("aks-lab-00005", "rg-dev-3", {"env": "dev", "ring": "2"})
    (only,) = applicable(example(), lab, today=TODAY)
    assert only.policy.name == "platform-baseline"
    assert only.exemption is not None and only.exemption.reason == "lab clusters"

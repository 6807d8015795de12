"""The fleet generator against its specification, docs/scenario.md.

The checks here are written from the documents, not from the generator's code: the flux
configuration bodies are parsed out of docs/scenario.md, targeting is restated from its policy
table and applied to ``fleet.core.clusters.facts_from_arm`` of the generated cluster JSON, and
the Microsoft.KubernetesConfiguration children are validated against the 2023-05-01 OpenAPI
files (closed world: a property the spec does not define is an error).

Each defect kind is checked by asserting the one change docs/scenario.md names and then undoing
it: what is left must pass the same checks as a compliant cluster ("every other kind starts
from [compliant] and changes one thing").
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from fleet.cli.app import app
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.core.ids import ClusterId, child_id, split_child
from fleet.emulator.generate import PRETTY_LIMIT, dumps, generate
from fleet.emulator.generate_configs import NEW_SHAPES
from fleet.emulator.generate_health import HEALTH_KINDS
from fleet.emulator.generate_tables import KINDS
from tests.scenario import declared, mismatch, scenario_verdicts

Json = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SEEDS = (1, 2, 3, 4, 5)
#: The main draw's kinds and the health kinds a fleet of 100 clusters or more adds.
ALL_KINDS = (*KINDS, *HEALTH_KINDS)

KC = "Microsoft.KubernetesConfiguration"


# --- the scenario, read from docs/scenario.md ----------------------------------------------------


@cache
def scenario_bodies() -> dict[str, Json]:
    """The flux configuration bodies of the yaml block in docs/scenario.md, by name."""
    text = (REPO / "docs" / "scenario.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    block = next(b for b in blocks if "# cluster-config" in b)
    yaml = YAML(typ="safe")
    bodies = {}
    # One mapping per configuration, each introduced by a "# name" comment line.
    for chunk in re.split(r"\n(?=# )", block.strip()):
        body = yaml.load(chunk)
        bodies[body.pop("name")] = body
    assert set(bodies) == {"cluster-config", "team-alpha", "edge-baseline"}
    return bodies


@cache
def scenario_catalogue() -> dict[str, list[str]]:
    """The ``microsoft.flux`` version catalogue of docs/scenario.md, newest first, by train."""
    text = (REPO / "docs" / "scenario.md").read_text(encoding="utf-8")
    trains = dict(re.findall(r"^(Stable|Preview):\s+(.+)$", text, flags=re.M))
    return {train: versions.split() for train, versions in trains.items()}


def stable() -> list[str]:
    return scenario_catalogue()["Stable"]


def arm_filled(body: Json) -> Json:
    """What ARM returns for the governed fields of a body (GetFluxConfiguration.json shape)."""
    git = body["gitRepository"]
    ref = git.get("repositoryRef") or {}
    return {
        "scope": body.get("scope", "cluster"),
        "namespace": body.get("namespace", "default"),
        "sourceKind": body.get("sourceKind", "GitRepository"),
        "suspend": body.get("suspend", False),
        "gitRepository": {
            "url": git["url"],
            "timeoutInSeconds": git.get("timeoutInSeconds", 600),
            "syncIntervalInSeconds": git.get("syncIntervalInSeconds", 600),
            "repositoryRef": {k: ref.get(k) for k in ("branch", "tag", "semver", "commit")},
        },
        "kustomizations": {
            name: {
                "name": name,
                "path": k.get("path", ""),
                "dependsOn": k.get("dependsOn", []),
                "timeoutInSeconds": k.get("timeoutInSeconds", 600),
                "syncIntervalInSeconds": k.get("syncIntervalInSeconds", 600),
                "retryIntervalInSeconds": k.get("retryIntervalInSeconds"),
                "prune": k.get("prune", False),
                "force": k.get("force", False),
                "wait": k.get("wait", True),
                "postBuild": k.get("postBuild"),
            }
            for name, k in body["kustomizations"].items()
        },
    }


def window(facts: ClusterFacts) -> int:
    return 1 if facts.tags.get("env") == "prod" else 2


def parse_time(value: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- OpenAPI validation (swagger 2.0 -> JSON Schema, $refs resolved across files) ---------------


def _spec_root() -> Path | None:
    for candidate in (
        os.environ.get("FLEET_ARM_SPEC"),
        REPO / "arm-spec",
        REPO / "tests" / "arm-spec",
    ):
        if candidate and (Path(candidate) / "kubernetesconfiguration").is_dir():
            return Path(candidate)
    return None


class SwaggerSchemas:
    """JSON Schemas for swagger definitions, closed world.

    ``x-nullable`` becomes ``null`` allowed; ``allOf`` parents are merged into the object so
    that ``additionalProperties: false`` can be added to every object that lists its
    properties (swagger leaves objects open; a generator typo would otherwise pass).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[Path, Json] = {}
        self.defs: dict[str, Json] = {}

    def _load(self, path: Path) -> Json:
        path = path.resolve()
        if path not in self.files:
            self.files[path] = json.loads(path.read_text(encoding="utf-8"))
        return self.files[path]

    def _target(self, ref: str, base: Path) -> tuple[Path, str, Json]:
        file_part, _, pointer = ref.partition("#")
        path = (base.parent / file_part).resolve() if file_part else base.resolve()
        node: Any = self._load(path)
        for part in pointer.strip("/").split("/"):
            node = node[part]
        return path, pointer, node

    def _ref(self, ref: str, base: Path) -> Json:
        path, pointer, node = self._target(ref, base)
        name = re.sub(r"[^A-Za-z0-9]+", "_", f"{path.stem}{pointer}")
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: definitions may be recursive (ErrorDetail)
            self.defs[name] = self._convert(node, path)
        return {"$ref": f"#/$defs/{name}"}

    def _properties(self, node: Json, base: Path) -> tuple[dict[str, Any], list[str]]:
        props: dict[str, Any] = {}
        required: list[str] = list(node.get("required", []))
        for parent in node.get("allOf", []):
            path, _p, target = (
                self._target(parent["$ref"], base) if "$ref" in parent else (base, "", parent)
            )
            inherited, req = self._properties(target, path)
            props.update(inherited)
            required += req
        for name, sub in node.get("properties", {}).items():
            props[name] = self._convert(sub, base)
        return props, required

    def _convert(self, node: Json, base: Path) -> Json:
        nullable = bool(node.get("x-nullable"))
        if "$ref" in node:
            ref = self._ref(node["$ref"], base)
            return {"anyOf": [{"type": "null"}, ref]} if nullable else ref
        out: Json = {}
        if "type" in node:
            out["type"] = [node["type"], "null"] if nullable else node["type"]
        if "enum" in node:
            out["enum"] = [*node["enum"], None] if nullable else list(node["enum"])
        if "properties" in node or "allOf" in node:
            out["properties"], required = self._properties(node, base)
            if required:
                out["required"] = required
            if "additionalProperties" not in node:
                out["additionalProperties"] = False
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = self._convert(node["additionalProperties"], base)
        if "items" in node:
            out["items"] = self._convert(node["items"], base)
        return out

    def schema(self, file: str, definition: str, folder: str = "stable/2023-05-01") -> Json:
        path = self.root / "kubernetesconfiguration/resource-manager" / KC / folder
        ref = self._ref(f"{file}#/definitions/{definition}", path / file)
        return {"$schema": "http://json-schema.org/draft-07/schema#", **ref, "$defs": self.defs}


@cache
def validators() -> dict[str, jsonschema.Draft7Validator]:
    root = _spec_root()
    if root is None:
        pytest.skip("the ARM OpenAPI files are not available (set FLEET_ARM_SPEC)")
    swagger = SwaggerSchemas(root)
    out = {}
    for arm_type, file, definition in (
        (f"{KC}/extensions", "extensions.json", "Extension"),
        (f"{KC}/fluxConfigurations", "fluxconfiguration.json", "FluxConfiguration"),
        (
            f"{KC}/sourceControlConfigurations",
            "kubernetesconfiguration.json",
            "SourceControlConfiguration",
        ),
    ):
        schema = swagger.schema(file, definition)
        jsonschema.Draft7Validator.check_schema(schema)
        out[arm_type] = jsonschema.Draft7Validator(schema)
    # The 2025-04-01 shapes (OCI sources, gitRepository.provider) against their own version;
    # a separate converter, as both files are called fluxconfiguration.json.
    newer = SwaggerSchemas(root).schema(
        "fluxconfiguration.json", "FluxConfiguration", "fluxConfigurations/stable/2025-04-01"
    )
    jsonschema.Draft7Validator.check_schema(newer)
    out[f"{KC}/fluxConfigurations@2025-04-01"] = jsonschema.Draft7Validator(newer)
    return out


def _api_of(child: Json) -> str:
    """The validator key of a child: 2025-04-01 for the shapes only that version has."""
    props = child.get("properties") or {}
    git = props.get("gitRepository") or {}
    if props.get("sourceKind") in ("OCIRepository", "Bucket") or "provider" in git:
        return f"{child['type']}@2025-04-01"
    return str(child["type"])


# --- a generated fleet, indexed ------------------------------------------------------------------


@dataclass
class Cluster:
    resource: Json
    facts: ClusterFacts
    kind: str
    extensions: list[Json] = field(default_factory=list)
    configs: dict[str, Json] = field(default_factory=dict)
    v1: list[Json] = field(default_factory=list)


@dataclass
class Fleet:
    snapshot: Json
    groups: dict[str, Json]
    clusters: dict[str, Cluster]

    def of_kind(self, kind: str) -> list[Cluster]:
        return [c for c in self.clusters.values() if c.kind == kind]


def index(snapshot: Json) -> Fleet:
    groups: dict[str, Json] = {}
    clusters: dict[str, Cluster] = {}
    children: list[Json] = []
    defects = snapshot["generator"]["defects"]
    for r in snapshot["resources"]:
        if r["type"] == "Microsoft.Resources/resourceGroups":
            groups[r["id"]] = r
        elif r["type"].startswith(KC):
            children.append(r)
        else:
            clusters[r["id"]] = Cluster(r, facts_from_arm(r), defects[r["id"]])
    for child in children:
        cluster_id, arm_type, name = split_child(child["id"])
        cluster = clusters[cluster_id]
        if arm_type.endswith("/extensions"):
            cluster.extensions.append(child)
        elif arm_type.endswith("/fluxConfigurations"):
            assert name not in cluster.configs
            cluster.configs[name] = child
        else:
            cluster.v1.append(child)
    return Fleet(snapshot, groups, clusters)


@cache
def fleet(seed: int, clusters: int = 200, subscriptions: int = 3) -> Fleet:
    return index(generate(clusters=clusters, subscriptions=subscriptions, seed=seed, now=NOW))


def all_clusters(kind: str) -> Iterator[Cluster]:
    for seed in SEEDS:
        yield from fleet(seed).of_kind(kind)


# --- what a compliant cluster looks like ---------------------------------------------------------


def check_cluster_reachable(c: Cluster) -> None:
    props = c.resource["properties"]
    assert props["provisioningState"] == "Succeeded"
    if c.facts.cluster_type == "managedClusters":
        assert c.facts.power_state == "Running"
    else:
        assert c.facts.connectivity_status == "Connected"
        assert c.facts.last_connectivity_time is not None
        assert NOW - c.facts.last_connectivity_time < timedelta(minutes=10)


def check_extension(c: Cluster) -> None:
    assert [e["name"] for e in c.extensions] == ["flux"]
    ext = c.extensions[0]
    props = ext["properties"]
    assert props["extensionType"] == "microsoft.flux"
    assert props["autoUpgradeMinorVersion"] is True
    assert props["releaseTrain"] == "Stable"
    assert props["version"] is None
    assert props["scope"] == {"cluster": {"releaseNamespace": "flux-system"}}
    assert props["configurationSettings"]["multiTenancy.enforce"] == "true"
    assert "configurationProtectedSettings" not in props
    assert props["provisioningState"] == "Succeeded"
    assert props["statuses"] == []
    assert props["isSystemExtension"] is False
    assert stable().index(props["currentVersion"]) <= window(c.facts)
    if c.facts.cluster_type == "managedClusters":
        assert props["aksAssignedIdentity"]["type"] == "SystemAssigned"
    else:
        assert "aksAssignedIdentity" not in props


def check_config(name: str, config: Json) -> None:
    """One declared flux configuration: the scenario body with ARM defaults, healthy."""
    props = config["properties"]
    governed = {k: props[k] for k in arm_filled(scenario_bodies()[name])}
    assert governed == arm_filled(scenario_bodies()[name])
    check_config_health(config)


def check_config_health(config: Json) -> None:
    props = config["properties"]
    assert props["provisioningState"] == "Succeeded"
    assert props["complianceState"] == "Compliant"
    assert props["errorMessage"] == ""
    assert props["repositoryPublicKey"] == ""
    branch = props["gitRepository"]["repositoryRef"]["branch"]
    assert re.fullmatch(rf"{re.escape(branch)}@sha1:[0-9a-f]{{40}}", props["sourceSyncedCommitId"])
    for stamp in ("sourceUpdatedAt", "statusUpdatedAt"):
        assert parse_time(props[stamp]) <= NOW
    ns = props["namespace"]
    expected = [(config["name"], "GitRepository")] + [
        (f"{config['name']}-{k}", "Kustomization") for k in props["kustomizations"]
    ]
    assert [(s["name"], s["kind"]) for s in props["statuses"]] == expected
    for status in props["statuses"]:
        assert status["namespace"] == ns
        assert status["complianceState"] == "Compliant"
        (ready,) = status["statusConditions"]
        assert (ready["type"], ready["status"]) == ("Ready", "True")
        assert props["sourceSyncedCommitId"] in ready["message"]


def check_compliant(c: Cluster) -> None:
    """Everything docs/scenario.md says a compliant cluster carries, and nothing else."""
    check_cluster_reachable(c)
    assert "tenancy" not in c.facts.tags
    assert not c.facts.name.startswith("aks-lab-")
    check_extension(c)
    assert list(c.configs) == declared(c.facts)
    for name, config in c.configs.items():
        check_config(name, config)
    assert c.v1 == []


def undone(c: Cluster, undo: Callable[[Cluster], None]) -> Cluster:
    copied = copy.deepcopy(c)
    undo(copied)
    copied.facts = facts_from_arm(copied.resource)
    return copied


def first_config(c: Cluster) -> Json:
    return c.configs[declared(c.facts)[0]]


# --- determinism, counts, the mix ----------------------------------------------------------------


def test_same_arguments_give_identical_bytes() -> None:
    a = dumps(generate(clusters=300, subscriptions=4, seed=9, now=NOW))
    b = dumps(generate(clusters=300, subscriptions=4, seed=9, now=NOW))
    assert a == b
    big_a = dumps(generate(clusters=PRETTY_LIMIT + 1, subscriptions=2, seed=9, now=NOW))
    big_b = dumps(generate(clusters=PRETTY_LIMIT + 1, subscriptions=2, seed=9, now=NOW))
    assert big_a == big_b
    assert b"\n  " in a and b"\n  " not in big_a  # small: indented; large: compact


def test_output_does_not_depend_on_string_hashing() -> None:
    # Set iteration order changes with PYTHONHASHSEED; nothing of it may leak into the output.
    code = (
        "import hashlib, sys; from datetime import datetime, UTC; "
        "from fleet.emulator.generate import dumps, generate; "
        "s = generate(clusters=300, subscriptions=3, seed=2, "
        "now=datetime(2026, 11, 25, tzinfo=UTC)); "
        "sys.stdout.write(hashlib.sha256(dumps(s)).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in (1, 2)
    }
    assert len(digests) == 1


def test_different_seeds_give_different_fleets() -> None:
    a = generate(clusters=100, subscriptions=2, seed=1, now=NOW)
    b = generate(clusters=100, subscriptions=2, seed=2, now=NOW)
    assert a["generator"]["defects"] != b["generator"]["defects"]
    assert [r["id"] for r in a["resources"]] != [r["id"] for r in b["resources"]]


def test_timestamps_follow_now() -> None:
    later = NOW + timedelta(days=3)
    a = generate(clusters=50, subscriptions=1, seed=4, now=NOW)
    b = generate(clusters=50, subscriptions=1, seed=4, now=later)
    assert a["generator"]["generatedAt"] == "2026-11-25T12:00:00Z"
    assert b["generator"]["generatedAt"] == "2026-11-28T12:00:00Z"
    assert a["generator"]["defects"] == b["generator"]["defects"]
    arc_a = [r for r in a["resources"] if r["type"].endswith("/connectedClusters")]
    arc_b = [r for r in b["resources"] if r["type"].endswith("/connectedClusters")]
    assert arc_a
    for x, y in zip(arc_a, arc_b, strict=True):
        shift = parse_time(y["properties"]["lastConnectivityTime"]) - parse_time(
            x["properties"]["lastConnectivityTime"]
        )
        assert shift == timedelta(days=3)


def test_now_defaults_to_the_current_minute() -> None:
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    snapshot = generate(clusters=5, subscriptions=1, seed=1)
    after = datetime.now(UTC)
    generated = parse_time(snapshot["generator"]["generatedAt"])
    assert before <= generated <= after and generated.second == 0


def test_snapshot_shape_and_counts() -> None:
    snapshot = generate(clusters=77, subscriptions=7, seed=3, now=NOW)
    assert snapshot["kind"] == "FleetSnapshot"
    assert [(s["subscriptionId"], s["displayName"]) for s in snapshot["subscriptions"]] == [
        ("00000000-0000-0000-0000-000000000001", "prod-eu"),
        ("00000000-0000-0000-0000-000000000002", "prod-us"),
        ("00000000-0000-0000-0000-000000000003", "staging"),
        ("00000000-0000-0000-0000-000000000004", "dev"),
        ("00000000-0000-0000-0000-000000000005", "sandbox"),
        ("00000000-0000-0000-0000-000000000006", "prod-eu-2"),
        ("00000000-0000-0000-0000-000000000007", "prod-us-2"),
    ]
    assert snapshot["extensionTypeVersions"] == {
        "microsoft.flux": {"Stable": stable(), "Preview": scenario_catalogue()["Preview"]}
    }
    gen = snapshot["generator"]
    assert (gen["seed"], gen["clusters"], gen["subscriptions"]) == (3, 77, 7)
    f = index(snapshot)
    assert len(f.clusters) == 77 == len(gen["defects"])
    assert set(gen["defects"]) == set(f.clusters)
    assert set(gen["defects"].values()) <= set(KINDS)
    assert set(snapshot["emulator"]) == {"faults", "failingSources"}
    subs = {s["subscriptionId"] for s in snapshot["subscriptions"]}
    assert {c.facts.subscription_id for c in f.clusters.values()} <= subs
    # Every subscription has every resource group family, so any kind fits in any of them.
    for sub in subs:
        names = [g["name"] for g in f.groups.values() if g["id"].split("/")[2] == sub]
        for family in ("prod", "stg", "dev", "edge"):
            assert any(n.startswith(f"rg-{family}-") for n in names), (sub, names)


@pytest.mark.parametrize("n", [0, -1])
def test_refuses_empty_fleets(n: int) -> None:
    with pytest.raises(ValueError, match="clusters"):
        generate(clusters=n, subscriptions=1, seed=1, now=NOW)
    with pytest.raises(ValueError, match="subscriptions"):
        generate(clusters=1, subscriptions=n, seed=1, now=NOW)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_kind_is_present_in_200_clusters(seed: int) -> None:
    assert set(fleet(seed).snapshot["generator"]["defects"].values()) == set(ALL_KINDS)


@pytest.mark.parametrize("seed", range(10))
def test_every_kind_is_present_when_there_are_just_enough_clusters(seed: int) -> None:
    snapshot = generate(clusters=len(KINDS), subscriptions=1, seed=seed, now=NOW)
    assert sorted(snapshot["generator"]["defects"].values()) == sorted(KINDS)


def test_the_mix_of_a_large_fleet() -> None:
    f = fleet(7, clusters=5000, subscriptions=10)
    n = len(f.clusters)
    kinds = Counter(c.kind for c in f.clusters.values())
    # 45 % drawn compliant, a few of them then given a health kind (docs/scenario.md)
    assert 0.39 < kinds["compliant"] / n < 0.46
    assert min(kinds[k] for k in KINDS) >= 40  # every kind, in real numbers
    assert [kinds[k] for k in HEALTH_KINDS] == [n // 200] * len(HEALTH_KINDS)
    arc = [c for c in f.clusters.values() if c.facts.cluster_type == "connectedClusters"]
    assert 0.27 < len(arc) / n < 0.33
    free = [c for c in f.clusters.values() if c.kind != "arm64_old_version"]
    assert 0.07 < sum(c.facts.arm64 for c in free) / len(free) < 0.13
    rings = Counter(c.facts.tags["ring"] for c in f.clusters.values())
    assert 0.03 < rings["0"] / n < 0.07 and 0.22 < rings["1"] / n < 0.28
    teams = Counter(c.facts.tags.get("team") for c in f.clusters.values())
    assert 0.12 < teams["alpha"] / n < 0.18 and 0.12 < teams["beta"] / n < 0.18
    assert {c.facts.location for c in f.clusters.values()} == {
        "westeurope",
        "northeurope",
        "eastus",
        "westus2",
    }
    distributions = Counter(c.facts.distribution for c in arc)
    assert {"k3s", "aks_edge_essentials", "openshift", "rancher_rke"} <= set(distributions)
    # Compliant clusters run the newest version or, while auto-upgrade rolls out, an older one
    # inside their window: N-1 for prod, N-2 elsewhere.
    versions = Counter(
        (c.facts.tags["env"] == "prod", c.extensions[0]["properties"]["currentVersion"])
        for c in f.of_kind("compliant")
    )
    assert versions[(True, "1.17.3")] > versions[(True, "1.17.2")] > 0
    assert versions[(False, "1.16.12")] > 0 and versions[(True, "1.16.12")] == 0


# --- ids and references --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_ids_are_canonical_and_references_resolve(seed: int) -> None:
    f = fleet(seed)
    for gid, group in f.groups.items():
        sub = gid.split("/")[2]
        assert gid == f"/subscriptions/{sub}/resourceGroups/{group['name']}"
        assert group["location"] and group["tags"]["env"] in ("prod", "staging", "dev")
    for cid, c in f.clusters.items():
        parsed = ClusterId.parse(cid)
        assert str(parsed) == cid  # canonical case
        assert c.resource["name"] == parsed.name
        group = f.groups[
            f"/subscriptions/{parsed.subscription_id}/resourceGroups/{parsed.resource_group}"
        ]
        assert c.resource["location"] == group["location"]
        assert c.facts.tags["env"] == group["tags"]["env"]
        for child in [*c.extensions, *c.configs.values(), *c.v1]:
            _cluster, arm_type, name = split_child(child["id"])
            assert child["id"] == f"{cid}/providers/{arm_type}/{name}"
            assert child["id"] == child_id(cid, arm_type.split("/")[1], name)
            assert (child["type"], child["name"]) == (arm_type, name)
    n_children = sum(len(c.extensions) + len(c.configs) + len(c.v1) for c in f.clusters.values())
    assert len(f.snapshot["resources"]) == len(f.groups) + len(f.clusters) + n_children
    assert len({r["id"].lower() for r in f.snapshot["resources"]}) == len(f.snapshot["resources"])


@pytest.mark.parametrize("seed", SEEDS)
def test_clusters_look_like_aks_and_arc(seed: int) -> None:
    for c in fleet(seed).clusters.values():
        r, props = c.resource, c.resource["properties"]
        assert r["identity"]["type"] == "SystemAssigned"
        assert re.fullmatch(r"(aks|arc)-(prod|staging|dev|lab)-\d{5}", r["name"])
        assert r["name"].split("-")[1] in (c.facts.tags["env"], "lab")
        assert c.facts.kubernetes_version
        if c.facts.cluster_type == "managedClusters":
            assert r["name"].startswith("aks-")
            assert props["currentKubernetesVersion"].startswith(props["kubernetesVersion"])
            assert props["fqdn"].endswith(f".hcp.{r['location']}.azmk8s.io")
            assert (
                props["nodeResourceGroup"]
                == f"MC_{c.facts.resource_group}_{r['name']}_" + (r["location"])
            )
            assert r["sku"]["name"] == "Base"
            for pool in props["agentPoolProfiles"]:
                assert set(pool) >= {"name", "vmSize", "osType", "osSKU", "count", "mode"}
            assert [p["mode"] for p in props["agentPoolProfiles"]].count("System") == 1
            assert c.facts.arm64 == any(
                p["vmSize"] == "Standard_D4ps_v5" for p in props["agentPoolProfiles"]
            )
        else:
            assert r["name"].startswith("arc-")
            assert props["distribution"] and props["infrastructure"] and props["agentVersion"]
            assert props["totalNodeCount"] >= 1
            assert props["totalCoreCount"] >= props["totalNodeCount"]
            assert c.facts.arm64 == (props.get("arch") == "arm64")
        if c.facts.resource_group.startswith("rg-edge-"):
            assert c.facts.cluster_type == "connectedClusters"


@pytest.mark.parametrize("seed", SEEDS)
def test_timestamps_tell_a_consistent_story(seed: int) -> None:
    for c in fleet(seed).clusters.values():
        born = parse_time(c.resource["systemData"]["createdAt"])
        for r in [c.resource, *c.extensions, *c.configs.values(), *c.v1]:
            created = parse_time(r["systemData"]["createdAt"])
            assert born <= created <= parse_time(r["systemData"]["lastModifiedAt"]) <= NOW
        for config in c.configs.values():
            props = config["properties"]
            assert parse_time(props["sourceUpdatedAt"]) <= NOW
            for status in props["statuses"]:
                for condition in status["statusConditions"]:
                    assert parse_time(condition["lastTransitionTime"]) <= NOW


@pytest.mark.parametrize("seed", SEEDS)
def test_children_validate_against_the_arm_openapi(seed: int) -> None:
    checks = validators()
    seen: Counter[str] = Counter()
    for c in fleet(seed).clusters.values():
        for child in [*c.extensions, *c.configs.values(), *c.v1]:
            errors = sorted(checks[_api_of(child)].iter_errors(child), key=str)
            assert not errors, (child["id"], [e.message for e in errors[:3]])
            seen[child["type"]] += 1
    assert len(seen) == 3


def test_the_openapi_check_catches_a_wrong_resource() -> None:
    checks = validators()
    c = next(c for c in all_clusters("compliant") if c.configs)
    config = copy.deepcopy(next(iter(c.configs.values())))
    assert checks[config["type"]].is_valid(config)
    config["properties"]["complianceState"] = "Noncompliant"  # Flux v2 spells it Non-Compliant
    assert not checks[config["type"]].is_valid(config)
    ext = copy.deepcopy(c.extensions[0])
    ext["properties"]["installedVersion"] = "1.17.3"  # no such property in 2023-05-01
    assert not checks[ext["type"]].is_valid(ext)


# --- each defect kind as docs/scenario.md describes it -------------------------------------------


def test_compliant() -> None:
    clusters = list(all_clusters("compliant"))
    assert clusters
    for c in clusters:
        check_compliant(c)


def test_extension_missing() -> None:
    for c in all_clusters("extension_missing"):
        check_cluster_reachable(c)
        assert c.extensions == [] and c.configs == {} and c.v1 == []


def test_extension_failed() -> None:
    def undo(c: Cluster) -> None:
        props = c.extensions[0]["properties"]
        assert props["provisioningState"] == "Failed"
        assert [s["level"] for s in props["statuses"]] == ["Error"]
        assert props.pop("errorInfo")["message"]
        props["provisioningState"], props["statuses"] = "Succeeded", []

    for c in all_clusters("extension_failed"):
        check_compliant(undone(c, undo))


def test_extension_drift() -> None:
    def undo(c: Cluster) -> None:
        props = c.extensions[0]["properties"]
        assert props["releaseTrain"] == "Preview"
        props["releaseTrain"] = "Stable"

    for c in all_clusters("extension_drift"):
        check_compliant(undone(c, undo))


def test_version_out_of_window() -> None:
    def undo(c: Cluster) -> None:
        props = c.extensions[0]["properties"]
        assert props["autoUpgradeMinorVersion"] is True
        assert props["currentVersion"] == "1.15.2"
        assert stable().index("1.15.2") > 2  # outside N-2, so outside every window
        props["currentVersion"] = "1.17.3"

    for c in all_clusters("version_out_of_window"):
        check_compliant(undone(c, undo))


def test_arm64_old_version() -> None:
    def undo(c: Cluster) -> None:
        props = c.extensions[0]["properties"]
        assert props["autoUpgradeMinorVersion"] is True
        assert props["currentVersion"] == "1.6.3"
        assert stable().index("1.6.3") > stable().index("1.7.0")  # older than ARM64's minimum
        props["currentVersion"] = "1.17.3"

    clusters = list(all_clusters("arm64_old_version"))
    assert {c.facts.cluster_type for c in fleet(7, 5000, 10).of_kind("arm64_old_version")} == {
        "managedClusters",
        "connectedClusters",
    }
    for c in clusters:
        assert c.facts.arm64  # fleet.core.clusters.is_arm64 of the cluster JSON
        check_compliant(undone(c, undo))


def test_flux_config_missing() -> None:
    for c in all_clusters("flux_config_missing"):
        wanted = declared(c.facts)
        assert wanted, "placed on a cluster that declares no flux configuration"
        assert list(c.configs) == wanted[1:]
        check_cluster_reachable(c)
        check_extension(c)
        for name, config in c.configs.items():
            check_config(name, config)


def test_branch_drift() -> None:
    def undo(c: Cluster) -> None:
        ref = first_config(c)["properties"]["gitRepository"]["repositoryRef"]
        assert ref["branch"] == "dev"
        ref["branch"] = "main"
        props = first_config(c)["properties"]
        for status in props["statuses"]:
            for cond in status["statusConditions"]:
                cond["message"] = cond["message"].replace("dev@sha1:", "main@sha1:")
        props["sourceSyncedCommitId"] = props["sourceSyncedCommitId"].replace("dev@", "main@")

    for c in all_clusters("branch_drift"):
        if "cluster-config" in declared(c.facts):
            assert declared(c.facts)[0] == "cluster-config"
        check_compliant(undone(c, undo))


def test_depends_on_drift() -> None:
    def undo(c: Cluster) -> None:
        apps = c.configs["cluster-config"]["properties"]["kustomizations"]["apps"]
        assert apps["dependsOn"] == []
        apps["dependsOn"] = ["infra"]

    for c in all_clusters("depends_on_drift"):
        assert "cluster-config" in declared(c.facts)
        check_compliant(undone(c, undo))


def test_extra_kustomization() -> None:
    def undo(c: Cluster) -> None:
        props = first_config(c)["properties"]
        debug = props["kustomizations"].pop("debug")
        assert debug["name"] == "debug" and debug["path"]
        props["statuses"] = [s for s in props["statuses"] if not s["name"].endswith("-debug")]

    for c in all_clusters("extra_kustomization"):
        check_compliant(undone(c, undo))


def test_flux_config_failed() -> None:
    def undo(c: Cluster) -> None:
        props = first_config(c)["properties"]
        assert props["provisioningState"] == "Failed" and props["errorMessage"]
        props["provisioningState"], props["errorMessage"] = "Succeeded", ""

    for c in all_clusters("flux_config_failed"):
        check_compliant(undone(c, undo))


def test_flux_config_noncompliant() -> None:
    def undo(c: Cluster) -> None:
        props = first_config(c)["properties"]
        assert props["complianceState"] == "Non-Compliant"
        failing = [s for s in props["statuses"] if s["complianceState"] == "Non-Compliant"]
        assert [s["kind"] for s in failing] == ["Kustomization"]
        assert failing[0]["statusConditions"][0]["status"] == "False"
        props["complianceState"] = "Compliant"
        failing[0]["complianceState"] = "Compliant"
        failing[0]["statusConditions"][0].update(
            status="True", message=f"Applied revision: {props['sourceSyncedCommitId']}"
        )

    for c in all_clusters("flux_config_noncompliant"):
        check_compliant(undone(c, undo))


def test_unmanaged_config() -> None:
    def undo(c: Cluster) -> None:
        legacy = c.configs.pop("legacy-apps")
        check_config_health(legacy)
        assert legacy["systemData"]["createdByType"] == "User"
        # the 2025-04-01 shapes and both kinds of bucket ride along (generate_configs.NEW_SHAPES)
        for name in NEW_SHAPES:
            shape = c.configs.pop(name)
            assert shape["systemData"]["createdByType"] == "User"
            props = shape["properties"]
            assert props["sourceKind"] == NEW_SHAPES[name]["sourceKind"]
            assert props["complianceState"] == "Compliant"
            assert props["statuses"][0]["kind"] == props["sourceKind"]

    for c in all_clusters("unmanaged_config"):
        assert "legacy-apps" not in declared(c.facts)
        check_compliant(undone(c, undo))


def test_flux_v1() -> None:
    for c in all_clusters("flux_v1"):
        check_cluster_reachable(c)
        assert c.extensions == [] and c.configs == {}
        (scc,) = c.v1
        props = scc["properties"]
        assert scc["name"] == "legacy-v1"
        assert props["operatorType"] == "Flux" and props["provisioningState"] == "Succeeded"
        assert props["repositoryUrl"] and props["complianceStatus"]["complianceState"]
        # Flux v1 creation was blocked from 2024-01-01: the configuration predates it.
        assert parse_time(scc["systemData"]["createdAt"]) < datetime(2024, 1, 1, tzinfo=UTC)
    # ...whatever "now" is.
    later = index(generate(clusters=200, subscriptions=1, seed=1, now=NOW.replace(year=2031)))
    (c, *_) = later.of_kind("flux_v1")
    created = parse_time(c.v1[0]["systemData"]["createdAt"])
    assert created < datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_time(c.resource["systemData"]["createdAt"]) <= created


@pytest.mark.parametrize(
    ("kind", "status", "days"), [("arc_offline", "Offline", 5), ("arc_expired", "Expired", 120)]
)
def test_arc_unreachable(kind: str, status: str, days: int) -> None:
    def undo(c: Cluster) -> None:
        props = c.resource["properties"]
        props["connectivityStatus"] = "Connected"
        props["lastConnectivityTime"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")

    for c in all_clusters(kind):
        assert c.facts.cluster_type == "connectedClusters"
        assert c.facts.connectivity_status == status
        assert c.facts.last_connectivity_time is not None
        silent = NOW - c.facts.last_connectivity_time
        assert timedelta(days=days) <= silent < timedelta(days=days + 1)
        assert silent > timedelta(hours=48)
        # Nothing on the cluster reported after it went silent.
        for config in c.configs.values():
            assert parse_time(config["properties"]["statusUpdatedAt"]) <= (
                c.facts.last_connectivity_time
            )
        check_compliant(undone(c, undo))


def test_aks_stopped() -> None:
    def undo(c: Cluster) -> None:
        c.resource["properties"]["powerState"] = {"code": "Running"}

    for c in all_clusters("aks_stopped"):
        assert c.facts.cluster_type == "managedClusters"
        assert c.facts.power_state == "Stopped"
        check_compliant(undone(c, undo))


def test_conflict() -> None:
    def undo(c: Cluster) -> None:
        assert c.resource["tags"].pop("tenancy") == "shared"

    for c in all_clusters("conflict"):
        check_compliant(undone(c, undo))


def test_exempt() -> None:
    for c in all_clusters("exempt"):
        assert c.facts.cluster_type == "managedClusters"
        assert re.fullmatch(r"aks-lab-\d{5}", c.facts.name)
        assert c.facts.resource_group.startswith("rg-dev-")
        assert "team" not in c.facts.tags and "tenancy" not in c.facts.tags
        # platform-baseline is the only policy targeting it: no flux configuration, no prod.
        assert declared(c.facts) == [] and c.facts.tags["env"] == "dev"
        check_cluster_reachable(c)
        check_extension(c)
        assert c.configs == {} and c.v1 == []
    # No other cluster matches the exemption glob */managedClusters/aks-lab-*.
    for seed in SEEDS:
        for c in fleet(seed).clusters.values():
            assert c.facts.name.startswith("aks-lab-") == (c.kind == "exempt")


def test_read_error() -> None:
    for seed in SEEDS:
        f = fleet(seed)
        faults = f.snapshot["emulator"]["faults"]
        erroring = [c for c in f.clusters.values() if c.kind == "read_error"]
        assert erroring
        assert [fault["pathPrefix"] for fault in faults] == [
            f"{c.resource['id']}/providers/Microsoft.KubernetesConfiguration" for c in erroring
        ]
        for fault, c in zip(faults, erroring, strict=True):
            assert (fault["id"], fault["action"]) == (f"read-error-{c.facts.name}", "error")
            assert fault["method"] == "GET" and fault["status"] == 500
            assert fault["code"] == "InternalServerError" and fault["message"]
            assert fault["count"] is None  # unlimited
        for c in erroring:
            check_compliant(c)  # the resources are fine; only reading them fails


def test_the_emulator_accepts_the_snapshot() -> None:
    snapshot_module = pytest.importorskip("fleet.emulator.snapshot")
    snapshot = generate(clusters=300, subscriptions=4, seed=8, now=NOW)
    assert snapshot_module.validate(snapshot) == []


def test_kinds_that_need_a_flux_configuration_get_one() -> None:
    f = fleet(7, clusters=5000, subscriptions=10)
    for kind in (
        "flux_config_missing",
        "branch_drift",
        "extra_kustomization",
        "flux_config_failed",
        "flux_config_noncompliant",
        "depends_on_drift",
    ):
        clusters = f.of_kind(kind)
        assert clusters and all(declared(c.facts) for c in clusters), kind
        # ...and still on both cluster types where it makes sense.
        if kind != "depends_on_drift":
            assert {c.facts.cluster_type for c in clusters} == {
                "managedClusters",
                "connectedClusters",
            }


# --- the scenario end to end: the real policies and engine agree with the kinds -----------------


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_the_engine_judges_every_cluster_as_the_scenario_says(seed: int) -> None:
    if not (REPO / "policies").is_dir():
        pytest.skip("policies/ (the example policies) is not there yet")
    loading = pytest.importorskip("fleet.policy.loading")
    selection = pytest.importorskip("fleet.select.selection")
    observed = pytest.importorskip("fleet.observe.observed")
    reconcile = pytest.importorskip("fleet.plan.pipeline")
    versions = pytest.importorskip("fleet.evaluate.versions")

    policy_set = loading.load([REPO / "policies"], today=NOW.date())
    f = fleet(seed)
    catalog = versions.Catalog.from_mapping(f.snapshot["extensionTypeVersions"]["microsoft.flux"])
    wrong = []
    # What the sweep reads once per subscription (fleet.azure.inventory.provider_registrations).
    states = {
        s["subscriptionId"]: (s.get("providers") or {}).get(KC, "Registered")
        for s in f.snapshot["subscriptions"]
    }
    for c in f.clusters.values():
        facts = c.facts.model_copy(
            update={"provider_registration": states[c.facts.subscription_id]}
        )
        seen = observed.ObservedCluster(
            facts,
            tuple(c.extensions),
            tuple(c.configs.values()),
            tuple(c.v1),
            # What the emulator's read_error fault makes fleet.azure.observe report.
            read_error="HTTP 500 InternalServerError" if c.kind == "read_error" else None,
        )
        targeting = selection.applicable(policy_set, c.facts, today=NOW.date())
        report = reconcile.judge(seen, targeting, catalog=catalog, now=NOW).verdict.to_report()
        problem = mismatch(c.kind, c.facts, report)
        if problem is not None:
            wrong.append(problem)
    assert wrong == []


# --- the command ---------------------------------------------------------------------------------


def test_cli_writes_a_loadable_snapshot(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "dir" / "fleet.json"
    args = [
        "emulator",
        "generate",
        "--clusters",
        "40",
        "--subscriptions",
        "2",
        "--seed",
        "5",
        "--now",
        "2026-11-25T12:00:00Z",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "40 clusters" in result.stderr and "compliant" in result.stderr
    loaded = orjson.loads(out.read_bytes())
    assert out.read_bytes() == dumps(generate(clusters=40, subscriptions=2, seed=5, now=NOW))
    assert len(loaded["generator"]["defects"]) == 40
    assert "replaced" not in result.stderr

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "replaced the existing file" in again.stderr
    assert [p.name for p in out.parent.iterdir()] == ["fleet.json"]  # no partial file left


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--clusters", "0"], "--clusters"),
        (["--clusters", "5", "--subscriptions", "0"], "--subscriptions"),
        (["--clusters", "5", "--now", "yesterday"], "--now"),
        (["--clusters", "many"], "--clusters"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path: Path, extra: list[str], message: str) -> None:
    out = tmp_path / "fleet.json"
    result = CliRunner().invoke(app, ["emulator", "generate", "--out", str(out), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not out.exists()


def test_the_scenario_table_names_every_kind() -> None:
    assert set(scenario_verdicts()) == set(ALL_KINDS)

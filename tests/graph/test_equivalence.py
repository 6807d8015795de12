"""The two inventories judge a fleet alike: a sweep with ``FLEET_INVENTORY=arm`` (per-cluster
ARM reads) and one with ``FLEET_INVENTORY=graph`` (Resource Graph bulk reads) against the same
emulator, on a generated fleet with every defect kind of docs/scenario.md, give every cluster
the same state, policy states and findings (code, policy, resource, path, severity, desired and
actual values).

One defect kind is a fault of the *ARM read path*, not of the fleet's state: ``read_error``
clusters answer 500 to every GET below their ``/providers/Microsoft.KubernetesConfiguration``.
Resource Graph does not go through those URLs, so it sees their configurations. For them the
ARM sweep must say ``error`` and the graph sweep must give the verdict ARM gives once the fault
is lifted; every other cluster must be identical with the fault in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.azure.graph import GraphInventory
from fleet.cli import app
from fleet.emulator.generate_health import HEALTH_KINDS
from fleet.emulator.generate_tables import KINDS
from fleet.emulator.testing import RunningEmulator, running_emulator
from fleet.policy.loading import PolicySet
from tests.conftest import POLICIES, emulator_env
from tests.graph.conftest import CLUSTERS, comparable, sweep, verdicts
from tests.scenario import scenario_verdicts


@pytest.fixture(scope="module")
def emulator(fleet: dict[str, Any]) -> Iterator[RunningEmulator]:
    # A generous graph quota: pacing is tested in test_quota.py; here it would only wait.
    with running_emulator(
        fleet, throttle="arm", retry_after=0, page_size=7, graph_quota=1000
    ) as emu:
        yield emu


def _cli_verdicts(emu: RunningEmulator, state_dir: Path, inventory: str) -> dict[str, Any]:
    emu.admin.reset_throttle()
    env = emulator_env(emu, state_dir, FLEET_INVENTORY=inventory)
    result = CliRunner().invoke(
        app, ["sweep", "-p", str(POLICIES), "-o", "json"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sweep"]["inventory"] == inventory
    assert report["sweep"]["complete"] is True
    return {c["id"].lower(): comparable(c) for c in report["clusters"]}


def test_arm_and_graph_sweeps_give_identical_verdicts(
    emulator: RunningEmulator, fleet: dict[str, Any], tmp_path: Path
) -> None:
    defects = {k.lower(): v for k, v in fleet["generator"]["defects"].items()}
    # every defect kind is in the fleet, the health kinds too
    assert set(defects.values()) == set(KINDS) | set(HEALTH_KINDS)

    arm = _cli_verdicts(emulator, tmp_path / "arm", "arm")
    emulator.admin.reset_stats()
    graph = _cli_verdicts(emulator, tmp_path / "graph", "graph")
    stats = emulator.admin.stats()

    assert len(arm) == len(graph) == CLUSTERS
    assert sorted(arm) == sorted(graph)
    differ = sorted(
        (defects[cid], cid)
        for cid in arm
        if arm[cid] != graph[cid] and defects[cid] != "read_error"
    )
    assert differ == []
    # ...and each health kind is judged as docs/scenario.md says, on both paths alike.
    for cid, kind in defects.items():
        if kind not in HEALTH_KINDS:
            continue
        state, required, optional, _ = scenario_verdicts()[kind]
        codes = {f[0] for f in graph[cid][2] if f[4] != "info"}
        assert graph[cid][0] == state, (kind, graph[cid])
        assert required <= codes <= required | optional, (kind, codes)
    # The graph sweep judged from graph rows: no per-cluster ARM read at all (only the
    # subscription list and one catalogue read per location).
    by_type = stats["requests"]["byResourceType"]
    kc_reads = sum(
        n
        for t, n in by_type.items()
        if "kubernetesconfiguration/" in t.lower() and "extensiontypes" not in t.lower()
    )
    assert kc_reads == 0, by_type
    assert stats["graphQueries"] >= 2

    # read_error: ARM cannot read them; the graph sees what ARM sees without the fault.
    broken = [cid for cid, kind in defects.items() if kind == "read_error"]
    assert broken and all(arm[cid][0] == "error" for cid in broken)
    faults = emulator.admin.faults()
    emulator.admin.clear_faults()
    try:
        healed = _cli_verdicts(emulator, tmp_path / "healed", "arm")
    finally:
        for fault in faults:
            spec = {k: v for k, v in fault.items() if k != "injected"}
            emulator.admin.add_fault(**spec)
    assert all(graph[cid] == healed[cid] for cid in broken)
    assert all(graph[cid][0] != "error" for cid in broken)


def test_paged_and_chunked_graph_reads_give_the_same_verdicts(
    emulator: RunningEmulator, policy_set: PolicySet, fleet: dict[str, Any], tmp_path: Path
) -> None:
    """Tiny pages (7 rows) and chunks (6 clusters: resource groups split by name prefix) give
    exactly the verdicts of one big page, and every page and chunk is used."""
    whole, _ = sweep(emulator, policy_set, tmp_path / "whole", inventory="graph")
    small, inventory = sweep(
        emulator,
        policy_set,
        tmp_path / "small",
        inventory="graph",
        graph=lambda session: GraphInventory(session, page_rows=7, chunk_clusters=6),
    )
    assert verdicts(small) == verdicts(whole)
    stats = inventory.stats
    assert stats.chunks >= CLUSTERS / 6
    assert stats.largest_chunk <= 6
    assert stats.pages > stats.chunks  # chunks needed more than one page
    assert stats.orphan_rows == 0
    assert stats.cluster_rows == CLUSTERS
    child_resources = sum(
        1 for r in fleet["resources"] if "/providers/Microsoft.KubernetesConfiguration/" in r["id"]
    )
    assert stats.child_rows == child_resources  # every row read exactly once

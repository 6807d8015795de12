"""The generated fleet's new source shapes (issue 13), judged alike by ARM and Resource Graph.

Every ``unmanaged_config`` cluster of ``fleet emulator generate`` carries, besides
``legacy-apps``, the configurations of ``generate_configs.NEW_SHAPES``: an OCI artifact (API
2025-04-01, with a layer selector and keyless verification), a Git source with
``provider: Azure``, a bucket created as the Azure CLI creates it (``insecure: false``) and one
whose body left ``insecure`` out (ARM's default, true). No policy names them: each cluster is
exactly ``compliant`` with one ``FLUX_CONFIG_UNMANAGED`` warning per undeclared configuration
and nothing else (no READ_ERROR, no UNRECOGNISED_SHAPE: fleet knows these shapes), on the ARM
path and on the Resource Graph path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet.emulator.generate_configs import NEW_SHAPES
from fleet.emulator.generate_tables import UNMANAGED_CONFIG
from fleet.emulator.scenario import UNMANAGED_CONFIG as LEGACY
from fleet.emulator.testing import running_emulator
from fleet.policy.loading import PolicySet
from tests.graph.conftest import sweep, verdicts

KC = "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/"


def test_new_shapes_are_in_the_generated_fleet(fleet: dict[str, Any]) -> None:
    configs = {
        (r["id"].split(KC)[0].lower(), r["name"]): r["properties"]
        for r in fleet["resources"]
        if KC in r["id"]
    }
    hosts = sorted(c for c, k in fleet["generator"]["defects"].items() if k == UNMANAGED_CONFIG)
    assert hosts
    for cid in (h.lower() for h in hosts):
        oci = configs[(cid, "podinfo-oci")]
        assert oci["sourceKind"] == "OCIRepository"
        assert oci["ociRepository"]["verify"]["provider"] == "cosign"
        assert configs[(cid, "ado-apps")]["gitRepository"]["provider"] == "Azure"
        assert configs[(cid, "s3-cli")]["bucket"]["insecure"] is False
        assert configs[(cid, "s3-arm-default")]["bucket"]["insecure"] is True


def test_each_path_gives_the_exact_verdict(
    fleet: dict[str, Any], policy_set: PolicySet, tmp_path: Path
) -> None:
    hosts = {c.lower() for c, k in fleet["generator"]["defects"].items() if k == UNMANAGED_CONFIG}
    undeclared = sorted([LEGACY, *NEW_SHAPES])
    with running_emulator(fleet, throttle="arm", retry_after=0, graph_quota=1000) as emu:
        by_path = {
            inventory: verdicts(
                sweep(emu, policy_set, tmp_path / inventory, inventory=inventory)[0]
            )
            for inventory in ("arm", "graph")
        }
    for inventory, judged in by_path.items():
        for cid in hosts:
            state, policies, findings = judged[cid]
            assert state == "compliant", (inventory, cid, findings)
            assert all(s == "compliant" for _, s in policies)
            assert [(f[0], f[4]) for f in findings] == [("FLUX_CONFIG_UNMANAGED", "warning")] * len(
                undeclared
            ), (inventory, findings)
            assert sorted(f[2].rsplit("/", 1)[-1] for f in findings) == undeclared
    assert {c: by_path["arm"][c] for c in hosts} == {c: by_path["graph"][c] for c in hosts}

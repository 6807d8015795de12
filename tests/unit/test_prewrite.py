"""The read right before a write (``fleet.apply.prewrite.with_targets``) and ARM's
``Retry-After`` as fleet reads it (``fleet.azure.apply.retry_after_of``): pure parts of the
read budget. The I/O around them is exercised against the emulator in tests/remediate."""

from __future__ import annotations

from fleet.apply.prewrite import with_targets
from fleet.azure.apply import MAX_RETRY_AFTER, retry_after_of
from fleet.core.clusters import ClusterFacts
from fleet.observe.observed import ObservedCluster
from fleet.plan.actions import Action, ActionKind

CLUSTER = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"
)
KC = f"{CLUSTER}/providers/Microsoft.KubernetesConfiguration"


def _action(kind: ActionKind, segment: str, name: str) -> Action:
    method = "DELETE" if kind.value.startswith("delete") else "PUT"
    return Action(
        kind=kind, cluster_id=CLUSTER, resource_id=f"{KC}/{segment}/{name}", method=method
    )


def _observed() -> ObservedCluster:
    return ObservedCluster(
        facts=ClusterFacts.of_id(CLUSTER),
        extensions=(
            {"name": "flux", "properties": {"version": "1.0.0"}},
            {"name": "other", "properties": {}},
        ),
        flux_configurations=({"name": "cluster-config", "properties": {"suspend": False}},),
        source_control_configurations=({"name": "legacy", "properties": {}},),
    )


def test_the_written_resource_is_replaced_by_its_fresh_read_and_the_rest_kept() -> None:
    fresh = {"name": "Flux", "properties": {"version": "2.0.0"}}
    seen = with_targets(
        _observed(), [(_action(ActionKind.PUT_EXTENSION, "extensions", "flux"), fresh)]
    )
    assert [e["name"] for e in seen.extensions] == ["other", "Flux"]  # by name, any case
    assert seen.extensions[-1]["properties"]["version"] == "2.0.0"
    assert seen.flux_configurations == _observed().flux_configurations
    assert seen.source_control_configurations == _observed().source_control_configurations


def test_a_resource_gone_since_planning_is_dropped_and_a_new_one_added() -> None:
    targets = [
        (_action(ActionKind.DELETE_FLUX_V1, "sourceControlConfigurations", "legacy"), None),
        (
            _action(ActionKind.PUT_FLUX_CONFIG, "fluxConfigurations", "apps"),
            {"name": "apps", "properties": {}},
        ),
    ]
    seen = with_targets(_observed(), targets)
    assert seen.source_control_configurations == ()
    assert [c["name"] for c in seen.flux_configurations] == ["cluster-config", "apps"]
    assert seen.extensions == _observed().extensions


def test_retry_after_is_seconds_bounded_and_absent_when_unusable() -> None:
    assert retry_after_of({"retry-after": "3"}) == 3.0
    assert retry_after_of({"retry-after": "100000"}) == MAX_RETRY_AFTER
    for bad in ({}, {"retry-after": "0"}, {"retry-after": "-1"}, {"retry-after": "soon"}):
        assert retry_after_of(bad) is None

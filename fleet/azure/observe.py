"""Observation: read one cluster and its Microsoft.KubernetesConfiguration children from ARM.

Four reads per cluster: the cluster itself (generic ``resources.get_by_id``, for the facts
the listing lacks: power state, connectivity, agent pools), and the lists of its extensions,
Flux v2 ``fluxConfigurations`` and Flux v1 ``sourceControlConfigurations``. The children are
kept as ARM JSON (the SDK model serialised back with its read-only fields), so evaluation sees
exactly what a snapshot or Resource Graph would show.

A read that still fails after retries does not stop the sweep: the cluster gets an
``ObservedCluster`` with ``read_error`` set, which evaluation turns into ``READ_ERROR``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleet.azure import retrying
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.core.ids import CLUSTER_PROVIDERS
from fleet.engine.observed import ObservedCluster

#: api-versions for the generic GET of each cluster kind (both stable, both return the
#: properties fleet reads: powerState/agentPoolProfiles, connectivityStatus/lastConnectivityTime).
CLUSTER_API_VERSIONS = {
    "managedClusters": "2024-05-01",
    "connectedClusters": "2024-01-01",
}


def _serialize(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.serialize(keep_readonly=True)
    return data


def _cluster_json(model: Any) -> dict[str, Any]:
    """The cluster's ARM JSON as returned (generic resource: properties stay a raw dict).

    azure-mgmt-resource's models are mappings of the wire JSON (``as_dict()``), unlike the
    msrest models of azure-mgmt-kubernetesconfiguration (``serialize()``).
    """
    data: dict[str, Any] = model.as_dict() if hasattr(model, "as_dict") else _serialize(model)
    data.setdefault("tags", {})
    if not isinstance(data.get("properties"), dict):
        data["properties"] = {}
    return data


def observe(
    session: AzureSession,
    facts: ClusterFacts,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> ObservedCluster:
    """Read a cluster's state; never raises for ARM failures (they become ``read_error``)."""
    attempts = session.settings.read_attempts
    provider, ctype = CLUSTER_PROVIDERS[facts.cluster_type].split("/")
    rg, name = facts.resource_group, facts.name
    try:
        rm = session.resources(facts.subscription_id)
        cluster = retrying.call(
            lambda: rm.resources.get_by_id(
                facts.id, api_version=CLUSTER_API_VERSIONS[facts.cluster_type]
            ),
            attempts=attempts,
            what=f"read cluster {name}",
            should_stop=should_stop,
        )
        cluster_json = _cluster_json(cluster)
        full = facts_from_arm(cluster_json)
        kc = session.kubernetes_configuration(facts.subscription_id)
        args = {
            "resource_group_name": rg,
            "cluster_rp": provider,
            "cluster_resource_name": ctype,
            "cluster_name": name,
        }
        extensions = retrying.call(
            lambda: [_serialize(m) for m in kc.extensions.list(**args)],
            attempts=attempts,
            what=f"list extensions of {name}",
            should_stop=should_stop,
        )
        flux = retrying.call(
            lambda: [_serialize(m) for m in kc.flux_configurations.list(**args)],
            attempts=attempts,
            what=f"list flux configurations of {name}",
            should_stop=should_stop,
        )
        v1 = retrying.call(
            lambda: [_serialize(m) for m in kc.source_control_configurations.list(**args)],
            attempts=attempts,
            what=f"list sourceControlConfigurations of {name}",
            should_stop=should_stop,
        )
    except retrying.ArmCallFailed as exc:
        return ObservedCluster(facts=facts, read_error=str(exc), source="arm")
    return ObservedCluster(
        facts=full,
        extensions=tuple(extensions),
        flux_configurations=tuple(flux),
        source_control_configurations=tuple(v1),
        source="arm",
        resource=cluster_json,
    )

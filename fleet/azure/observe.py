"""Observation: read one cluster and its Microsoft.KubernetesConfiguration children from ARM.

Four reads per cluster: the cluster itself (generic ``resources.get_by_id``, for the facts
the listing lacks: power state, connectivity, agent pools), and the lists of its extensions,
Flux v2 ``fluxConfigurations`` and Flux v1 ``sourceControlConfigurations``. The children are
kept as the ARM JSON of the response, so evaluation sees exactly what a snapshot or Resource
Graph would show.

The lists go through the SDK's own operations (URL building, nextLink paging, error mapping,
the client's pipeline), with one change: the page is not turned into msrest models and back.
``_RawLists`` hands the operation the JSON the pipeline already decoded (msrest's
deserialize + serialize of every child cost ~1 ms of CPU each, more than the request).

A read that still fails after retries does not stop the sweep: the cluster gets an
``ObservedCluster`` with ``read_error`` set, which evaluation turns into ``READ_ERROR``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from azure.mgmt.kubernetesconfiguration._serialization import Deserializer

from fleet.azure import retrying
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.core.errors import ArmCallFailed
from fleet.core.ids import CLUSTER_PROVIDERS
from fleet.observe.observed import ObservedCluster

#: api-versions for the generic GET of each cluster kind (both stable, both return the
#: properties fleet reads: powerState/agentPoolProfiles, connectivityStatus/lastConnectivityTime).
CLUSTER_API_VERSIONS = {
    "managedClusters": "2024-05-01",
    "connectedClusters": "2024-01-01",
}


@dataclass(frozen=True, slots=True)
class _Page:
    """What a list operation reads from a deserialized page."""

    value: list[Any]
    next_link: str | None


class _RawLists(Deserializer):
    """The SDK's deserializer, except that list pages stay the JSON ARM sent."""

    LISTS = frozenset(
        {"ExtensionsList", "FluxConfigurationsList", "SourceControlConfigurationList"}
    )

    def __call__(self, target_obj: Any, response_data: Any, content_type: Any = None) -> Any:
        if isinstance(target_obj, str) and target_obj in self.LISTS:
            data = self._unpack_content(response_data, content_type)  # type: ignore[no-untyped-call]
            if isinstance(data, dict):
                value = data.get("value")
                return _Page(list(value) if isinstance(value, list) else [], data.get("nextLink"))
        return super().__call__(target_obj, response_data, content_type)  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class _Lists:
    extensions: Any
    flux_configurations: Any
    source_control_configurations: Any


_LISTS: weakref.WeakKeyDictionary[Any, _Lists] = weakref.WeakKeyDictionary()
_LISTS_LOCK = threading.Lock()


def _lists(client: Any) -> _Lists:
    """The three list operation groups of a client, built once.

    The multi-API client builds a new operation group (and two msrest (de)serializers over
    every model of the API version) on *each* attribute access: ~28 µs, three times a cluster.
    """
    with _LISTS_LOCK:
        found = _LISTS.get(client)
        if found is None:
            groups = []
            for name in ("extensions", "flux_configurations", "source_control_configurations"):
                group = getattr(client, name)
                group._deserialize = _RawLists(group._deserialize.dependencies)
                groups.append(group)
            found = _LISTS[client] = _Lists(*groups)
        return found


def _cluster_json(data: Any) -> dict[str, Any]:
    """The cluster's ARM JSON as returned, with ``tags`` and ``properties`` objects."""
    if not isinstance(data, dict):
        raise ValueError("the cluster is not a JSON object")
    data.setdefault("tags", {})
    if not isinstance(data.get("properties"), dict):
        data["properties"] = {}
    return data


def _read_json(chunks: Any) -> Any:
    """The JSON of a streamed body (an operation called with ``stream=True``)."""
    body: Iterable[bytes] = chunks
    return orjson.loads(b"".join(body))


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
        cluster_json = retrying.call(
            # stream=True: the operation hands back the body instead of building a model of
            # it (which fleet only turned back into this JSON); errors are mapped as usual.
            lambda: _cluster_json(
                _read_json(
                    rm.resources.get_by_id(
                        facts.id, api_version=CLUSTER_API_VERSIONS[facts.cluster_type], stream=True
                    )
                )
            ),
            attempts=attempts,
            what=f"read cluster {name}",
            should_stop=should_stop,
        )
        full = facts_from_arm(cluster_json)
        kc = session.kubernetes_configuration(facts.subscription_id)
        args = {
            "resource_group_name": rg,
            "cluster_rp": provider,
            "cluster_resource_name": ctype,
            "cluster_name": name,
        }
        ops = _lists(kc)
        extensions = retrying.call(
            lambda: list(ops.extensions.list(**args)),
            attempts=attempts,
            what=f"list extensions of {name}",
            should_stop=should_stop,
        )
        flux = retrying.call(
            lambda: list(ops.flux_configurations.list(**args)),
            attempts=attempts,
            what=f"list flux configurations of {name}",
            should_stop=should_stop,
        )
        v1 = retrying.call(
            lambda: list(ops.source_control_configurations.list(**args)),
            attempts=attempts,
            what=f"list sourceControlConfigurations of {name}",
            should_stop=should_stop,
        )
    except ArmCallFailed as exc:
        return ObservedCluster(facts=facts, read_error=str(exc), source="arm")
    return ObservedCluster(
        facts=full,
        extensions=tuple(extensions),
        flux_configurations=tuple(flux),
        source_control_configurations=tuple(v1),
        source="arm",
        resource=cluster_json,
    )

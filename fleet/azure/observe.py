"""Observation: read one cluster and its Microsoft.KubernetesConfiguration children from ARM.

Three reads per cluster: the lists of its extensions, Flux v2 ``fluxConfigurations`` and
Flux v1 ``sourceControlConfigurations``, each at the api-version of ``fleet.azure.api_versions``.
The cluster's own facts (power state, connectivity, agent pools) come from the inventory's
provider listing (``ClusterFacts.listed_at``); a fourth read, the cluster itself (generic
``resources.get_by_id``), is made only when those facts are missing (listed without
properties, or addressed by id alone), older than ``FLEET_FACTS_MAX_AGE``, or when the caller
wants the cluster read (``fleet snapshot`` exports its JSON; a remediation decides and verifies
each write on a fresh read, ``fleet.apply.steps``). The children are kept as the ARM JSON of the
response, so evaluation sees exactly what a snapshot or Resource Graph would show.

The lists go through each SDK client's own pipeline (credential, fleet's budget, retries,
ARM's error mapping) as raw JSON pages (``inventory.list_json``), never through the SDK's
models: a model refuses or mangles what its api-version does not describe (msrest drops
unknown properties; the TypeSpec models turn a non-list ``statuses`` into a generator's
``repr``), and Azure adds enum values and properties without notice. What fleet does not know
is for evaluation to note, never a reason for the read to fail.

A read that still fails after retries does not stop the sweep: the cluster gets an
``ObservedCluster`` with ``read_error`` set, which evaluation turns into ``READ_ERROR``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from azure.core.rest import HttpRequest

from fleet.azure import api_versions, retrying
from fleet.azure.inventory import list_json, registered
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.core.errors import ArmCallFailed
from fleet.core.ids import KC_PROVIDER
from fleet.observe.observed import ObservedCluster


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


def needs_cluster_read(facts: ClusterFacts, max_age: float, now: datetime | None = None) -> bool:
    """True when the listed facts cannot be judged on: none were listed with properties, or
    they are older than ``max_age`` seconds (or stamped in the future: a clock that jumped)."""
    if facts.listed_at is None:
        return True
    age = ((now or datetime.now(UTC)) - facts.listed_at).total_seconds()
    return not 0 <= age <= max_age


def _read_cluster(
    session: AzureSession, facts: ClusterFacts, should_stop: Callable[[], bool] | None
) -> dict[str, Any]:
    rm = session.resources(facts.subscription_id)
    return retrying.call(
        # stream=True: the operation hands back the body instead of building a model of
        # it (which fleet only turned back into this JSON); errors are mapped as usual.
        lambda: _cluster_json(
            _read_json(
                rm.resources.get_by_id(
                    facts.id, api_version=api_versions.CLUSTERS[facts.cluster_type], stream=True
                )
            )
        ),
        attempts=session.settings.read_attempts,
        what=f"read cluster {facts.name}",
        should_stop=should_stop,
    )


def observe(
    session: AzureSession,
    facts: ClusterFacts,
    *,
    should_stop: Callable[[], bool] | None = None,
    read_cluster: bool = False,
) -> ObservedCluster:
    """Read a cluster's state; never raises for ARM failures (they become ``read_error``).

    ``read_cluster``: GET the cluster even when its listed facts are fresh (the observation
    then carries the cluster's JSON in ``resource``)."""
    attempts = session.settings.read_attempts
    sub = facts.subscription_id
    try:
        rm = session.resources(sub)
        cluster_json: dict[str, Any] | None = None
        full = facts
        if read_cluster or needs_cluster_read(facts, session.settings.facts_max_age):
            cluster_json = _read_cluster(session, facts, should_stop)
            full = facts_from_arm(cluster_json)
        if facts.provider_registration is not None:
            full = full.model_copy(update={"provider_registration": facts.provider_registration})
        if not registered(facts):
            # ARM refuses every request for the namespace there (409
            # MissingSubscriptionRegistration), and the SDK would answer that by trying to
            # register it: a write. Nothing of it can exist, so nothing is read.
            return ObservedCluster(
                facts=full,
                source="arm",
                resource=cluster_json,
                notes=(
                    f"{KC_PROVIDER} is {facts.provider_registration} in the subscription: "
                    "its resources were not read",
                ),
            )
        children = f"{facts.id}/providers/{KC_PROVIDER}"
        lists: list[list[dict[str, Any]]] = []
        for client, kind, version in (
            (session.extensions(sub), "extensions", api_versions.EXTENSIONS),
            (
                session.flux_configurations(sub),
                "fluxConfigurations",
                api_versions.FLUX_CONFIGURATIONS,
            ),
            # The multi-API Flux v1 client has no ``send_request``: any ARM pipeline of the
            # subscription carries the request as well (same credential, budget and retries).
            (rm, "sourceControlConfigurations", api_versions.SOURCE_CONTROL_CONFIGURATIONS),
        ):
            request = HttpRequest("GET", f"{children}/{kind}", params={"api-version": version})
            lists.append(
                retrying.call(
                    lambda client=client, request=request: list_json(client, request),  # type: ignore[misc]
                    attempts=attempts,
                    what=f"list {kind} of {facts.name}",
                    should_stop=should_stop,
                )
            )
    except ArmCallFailed as exc:
        return ObservedCluster(facts=facts, read_error=str(exc), source="arm")
    extensions, flux, v1 = lists
    return ObservedCluster(
        facts=full,
        extensions=tuple(extensions),
        flux_configurations=tuple(flux),
        source_control_configurations=tuple(v1),
        source="arm",
        resource=cluster_json,
    )

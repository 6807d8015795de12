"""Inventory: the subscriptions and clusters in scope, the extension version catalogue, and
whether a subscription is registered for a resource provider.

``ArmInventory`` lists each subscription's clusters through their resource providers'
list-by-subscription (``GET /subscriptions/{s}/providers/Microsoft.ContainerService/
managedClusters`` and ``.../Microsoft.Kubernetes/connectedClusters``, paged), which return every
cluster *with* its ``properties`` (power state, connectivity, agent pools): the facts are
complete when listed and stamped ``listed_at``, so the observer needs no GET of the cluster
(``fleet.azure.observe``; it still reads one whose listed facts are older than
``FLEET_FACTS_MAX_AGE``). ARM's generic ``resources.list`` returns no ``properties``; a sweep
through it made one GET per cluster more (4 reads a cluster where 3 carry the information).

The Resource Graph inventory (``fleet.azure.graph``) implements the same ``Inventory``
protocol with bulk queries that also return properties, and ``BulkInventory.observations``:
the clusters' configurations read in bulk, so a sweep needs no per-cluster ARM reads.

The version catalogue is ``extensionTypes/microsoft.flux/versions`` of api-version 2026-05-01
(one resource per version, one release train per request), read every time it is asked for:
``fleet.azure.catalogs.CatalogCache`` asks once per location and sweep or job, so a new release
(which reaches regions one after another) is seen by the next one, in a long-lived worker too
(``versionPolicy: promote`` moves clusters as it arrives). One that
cannot be read after retries, or that lists no Stable release (ARM always has some, so an empty
one means the read was not what it seemed), raises ``fleet.core.errors.CatalogUnavailable``;
``fleet.azure.catalogs`` says what a job then does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import orjson
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.core.exceptions import ARMErrorFormat

from fleet.azure import api_versions, retrying
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.core.errors import ArmCallFailed, CatalogUnavailable
from fleet.core.ids import CLUSTER_PROVIDERS, KC_PROVIDER
from fleet.observe.observed import ObservedCluster

log = logging.getLogger(__name__)

FLUX_TYPE = "microsoft.flux"
#: The release trains microsoft.flux publishes; each is one catalogue request per location.
RELEASE_TRAINS = ("Stable", "Preview")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    name: str


class Inventory(Protocol):
    """Where clusters come from (ARM listing or Resource Graph)."""

    name: str

    def subscriptions(self, wanted: frozenset[str] | None) -> list[Subscription]:
        """Subscriptions in scope: the visible ones, narrowed to ``wanted`` (None = all)."""

    def clusters(self, subscriptions: Iterable[Subscription]) -> Iterator[ClusterFacts]:
        """Every AKS and Arc cluster of the subscriptions (list-level facts)."""

    def catalog(self, subscription_id: str, location: str) -> dict[str, list[str]]:
        """microsoft.flux versions per release train available in a location."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One cluster from a bulk inventory: its facts and, when the bulk read was complete
    enough to judge it, its observation.

    ``observed`` is None when the cluster must be read from ARM instead (its bulk rows were
    incomplete or stale); ``notes`` then say why and end up in ``ObservedCluster.notes``.
    """

    facts: ClusterFacts
    observed: ObservedCluster | None
    notes: tuple[str, ...] = ()


@runtime_checkable
class BulkInventory(Inventory, Protocol):
    """An inventory that also reads the clusters' configurations in bulk (Resource Graph)."""

    def observations(self, subscriptions: Iterable[Subscription]) -> Iterator[Observation]:
        """Every cluster of the subscriptions with its configurations, streamed."""


#: As the SDK maps statuses to exceptions (``fleet.azure.errors.describe`` reads them).
_ERROR_MAP = {401: ClientAuthenticationError, 404: ResourceNotFoundError}


def send_json(
    client: Any,
    request: HttpRequest,
    *,
    on_response: Callable[[HttpResponse], None] | None = None,
    **options: Any,
) -> Any:
    """Send ``request`` through an SDK client's own pipeline (credential, fleet's budget
    policy, retries, transport) and return the JSON body, parsed once with orjson.

    For reads whose JSON fleet uses as it is: the typed operations would build SDK models of
    every item, which fleet would only turn back into JSON. ``on_response`` sees every answer,
    failed ones too, before its status is judged (Resource Graph's quota headers). Failures
    raise the exceptions the SDK raises (``HttpResponseError`` and its subclasses, with ARM's
    error code).
    """
    send = getattr(client, "send_request", None) or client._send_request
    response = send(request, stream=True, **options)
    try:
        response.read()
    finally:
        response.close()
    if on_response is not None:
        on_response(response)
    if response.status_code != 200:
        map_error(response.status_code, response, _ERROR_MAP)
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        # As the SDK's ContentDecodePolicy reports a body that is not JSON (cut short, a
        # proxy's HTML page); ``fleet.azure.errors.describe`` knows it as transient.
        raise DecodeError(message=f"JSON is invalid: {exc}", response=response) from None


def list_json(client: Any, request: HttpRequest) -> list[dict[str, Any]]:
    """Every item of an ARM list (``{value, nextLink}`` pages), as the JSON ARM sent."""
    items: list[dict[str, Any]] = []
    while True:
        page = send_json(client, request)
        if not isinstance(page, dict):
            raise DecodeError(message="JSON is invalid: an ARM list page must be an object")
        items.extend(v for v in page.get("value") or () if isinstance(v, dict))
        next_link = page.get("nextLink")
        if not next_link:
            return items
        request = HttpRequest("GET", next_link)


class ArmInventory:
    """Inventory through ARM listing calls (``azure-mgmt-resource``)."""

    name = "arm"

    def __init__(self, session: AzureSession) -> None:
        self._session = session

    def subscriptions(self, wanted: frozenset[str] | None) -> list[Subscription]:
        client = self._session.subscriptions()
        visible = retrying.call(
            lambda: [
                Subscription(str(s.subscription_id), str(s.display_name or s.subscription_id))
                for s in client.subscriptions.list()
            ],
            attempts=self._session.settings.read_attempts,
            what="list subscriptions",
        )
        if wanted is None:
            return sorted(visible, key=lambda s: s.id)
        by_id = {s.id.lower(): s for s in visible}
        chosen = []
        for sub in sorted(wanted):
            found = by_id.get(sub.lower())
            if found is None:
                log.warning("subscription %s is not visible to this principal; skipped", sub)
                continue
            chosen.append(found)
        return chosen

    def clusters(self, subscriptions: Iterable[Subscription]) -> Iterator[ClusterFacts]:
        for sub in subscriptions:
            yield from provider_clusters(self._session, sub.id)

    def catalog(self, subscription_id: str, location: str) -> dict[str, list[str]]:
        """Versions per train for a location (read now); raises ``CatalogUnavailable`` when it
        cannot be read (see the module docstring)."""
        client = self._session.extensions(subscription_id)
        path = (
            f"/subscriptions/{subscription_id}/providers/{KC_PROVIDER}/locations/{location}"
            f"/extensionTypes/{FLUX_TYPE}/versions"
        )

        def read(train: str) -> list[str]:
            params = {"api-version": api_versions.EXTENSION_TYPES, "releaseTrain": train}
            items = list_json(client, HttpRequest("GET", path, params=params))
            props = (item.get("properties") for item in items)
            return [str(p["version"]) for p in props if isinstance(p, dict) and p.get("version")]

        trains: dict[str, list[str]] = {}
        try:
            for train in RELEASE_TRAINS:
                found = retrying.call(
                    lambda train=train: read(train),  # type: ignore[misc]
                    attempts=self._session.settings.read_attempts,
                    what=f"list {FLUX_TYPE} {train} versions in {location}",
                )
                if found:
                    trains[train] = found
        except ArmCallFailed as exc:
            raise CatalogUnavailable(location, f"could not be read: {exc}") from exc
        if not trains.get(RELEASE_TRAINS[0]):
            raise CatalogUnavailable(location, f"lists no {RELEASE_TRAINS[0]} release")
        return trains


def provider_clusters(session: AzureSession, subscription_id: str) -> Iterator[ClusterFacts]:
    """Every AKS and Arc cluster of a subscription with its properties: one paged
    list-by-subscription per cluster type, each at the api-version fleet reads that type with.

    AKS goes through ``azure-mgmt-containerservice``'s pipeline, Arc (no SDK package is
    installed for Microsoft.Kubernetes) through the resource client's, both as raw JSON pages
    (``list_json``): an SDK model of every cluster would cost ~0.4 ms each and drop what its
    api-version does not describe. Facts whose item carries ``properties`` are stamped
    ``listed_at`` (the observer judges them without reading the cluster again); an item
    without them is yielded with ``listed_at`` None, and the observer reads it. A listing that
    still fails after retries raises ``ArmCallFailed``, as the generic list did.
    """
    clients = {
        "managedClusters": session.container_service(subscription_id),
        "connectedClusters": session.resources(subscription_id),
    }
    for ctype, provider in CLUSTER_PROVIDERS.items():
        client = clients[ctype]
        request = HttpRequest(
            "GET",
            f"/subscriptions/{subscription_id}/providers/{provider}",
            params={"api-version": api_versions.CLUSTERS[ctype]},
        )
        # One stamp per listing, taken before its first page is asked for: no item of it can
        # be older, so its age is never understated.
        listed_at = datetime.now(UTC)
        items = retrying.call(
            lambda client=client, request=request: list_json(client, request),  # type: ignore[misc]
            attempts=session.settings.read_attempts,
            what=f"list {provider} of {subscription_id}",
        )
        for item in items:
            try:
                facts = facts_from_arm(item)
            except (ValueError, KeyError) as exc:
                log.warning("skipping unexpected resource %s: %s", item.get("id", "?"), exc)
                continue
            if isinstance(item.get("properties"), dict):
                facts = facts.model_copy(update={"listed_at": listed_at})
            yield facts


def registration_states(
    session: AzureSession, subscription_ids: Iterable[str], namespace: str = KC_PROVIDER
) -> dict[str, str]:
    """A provider namespace's ``registrationState`` (``Registered``, ``NotRegistered``,
    ``Registering``, ...) per subscription: one ``providers.get`` each, through
    ``azure-mgmt-resource``. Raises ``ArmCallFailed`` when a read still fails after retries."""
    states: dict[str, str] = {}
    for sub in subscription_ids:
        client = session.resources(sub)
        provider = retrying.call(
            lambda client=client: client.providers.get(namespace),  # type: ignore[misc]
            attempts=session.settings.read_attempts,
            what=f"read the {namespace} registration of {sub}",
        )
        states[sub] = str(provider.registration_state or "Unknown")
    return states


def provider_registrations(
    session: AzureSession, subscription_ids: Iterable[str], namespace: str = KC_PROVIDER
) -> dict[str, str]:
    """``registration_states`` for a sweep: one read per subscription, and a subscription
    whose read fails after retries is left out (logged) instead of failing the sweep; its
    clusters are then read as if registered (a refusal becomes their ``READ_ERROR``)."""
    states: dict[str, str] = {}
    for sub in subscription_ids:
        try:
            states.update(registration_states(session, [sub], namespace))
        except ArmCallFailed as exc:
            log.warning("could not read the %s registration of %s: %s", namespace, sub, exc)
    return states


def with_registration(facts: ClusterFacts, states: Mapping[str, str]) -> ClusterFacts:
    """``facts`` with its subscription's registration state, when it was read."""
    state = states.get(facts.subscription_id) or states.get(facts.subscription_id.lower())
    if state is None or state == facts.provider_registration:
        return facts
    return facts.model_copy(update={"provider_registration": state})


def registered(facts: ClusterFacts) -> bool:
    """False when the cluster's subscription is known not to be registered for
    Microsoft.KubernetesConfiguration: ARM refuses every read of its children there."""
    state = facts.provider_registration
    return state is None or state.lower() == "registered"

"""Inventory: the subscriptions and clusters in scope, and the extension version catalogue.

``ArmInventory`` lists through ``azure-mgmt-resource``: one paged ``resources.list`` per
subscription, filtered to the two cluster types. ARM's generic list returns id, name, type,
location and tags but no ``properties``, which is all selection needs; the per-cluster facts
that need properties (power state, connectivity, agent pools) come from the observer's GET of
the cluster, made only for clusters some policy targets.

The Resource Graph inventory (``fleet.azure.graph``) implements the same ``Inventory``
protocol with bulk queries that also return properties, and ``BulkInventory.observations``:
the clusters' configurations read in bulk, so a sweep needs no per-cluster ARM reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.core.exceptions import ARMErrorFormat

from fleet.azure import retrying
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts, facts_from_arm
from fleet.core.ids import CLUSTER_PROVIDERS
from fleet.observe.observed import ObservedCluster

log = logging.getLogger(__name__)

_CLUSTER_FILTER = " or ".join(f"resourceType eq '{t}'" for t in CLUSTER_PROVIDERS.values())
#: The api-version azure-mgmt-resource 26 lists resources with.
RESOURCES_API_VERSION = "2025-04-01"


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
    return orjson.loads(response.content)


def _list_json(client: Any, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every item of an ARM list (``{value, nextLink}`` pages)."""
    items: list[dict[str, Any]] = []
    request = HttpRequest("GET", path, params=params)
    while True:
        page = send_json(client, request)
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
        self._catalogs: dict[str, dict[str, list[str]]] = {}
        self._catalog_lock = threading.Lock()

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
            client = self._session.resources(sub.id)
            # The generic resource list (what ``resources.list(filter=...)`` sends), its JSON
            # used as it is: building an SDK model of every listed cluster cost ~0.4 ms each.
            path = f"/subscriptions/{sub.id}/resources"
            params = {"$filter": _CLUSTER_FILTER, "api-version": RESOURCES_API_VERSION}
            resources = retrying.call(
                lambda client=client, path=path, params=params: _list_json(client, path, params),  # type: ignore[misc]
                attempts=self._session.settings.read_attempts,
                what=f"list clusters of {sub.id}",
            )
            for res in resources:
                try:
                    yield facts_from_arm(res)
                except (ValueError, KeyError) as exc:
                    log.warning("skipping unexpected resource %s: %s", res.get("id", "?"), exc)

    def catalog(self, subscription_id: str, location: str) -> dict[str, list[str]]:
        """Versions per train for a location, read once per location and cached."""
        key = location.lower().replace(" ", "")
        with self._catalog_lock:
            cached = self._catalogs.get(key)
        if cached is not None:
            return cached
        client = self._session.kubernetes_configuration(subscription_id)

        def read() -> dict[str, list[str]]:
            trains: dict[str, list[str]] = {}
            for item in client.extension_type_versions.list(location, "microsoft.flux"):
                train = str(getattr(item, "release_train", None) or "Stable")
                trains.setdefault(train, []).extend(str(v) for v in (item.versions or ()))
            return trains

        trains = retrying.call(
            read,
            attempts=self._session.settings.read_attempts,
            what=f"list flux versions in {location}",
        )
        with self._catalog_lock:
            self._catalogs[key] = trains
        return trains

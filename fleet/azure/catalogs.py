"""The extension version catalogues a job judges against, fetched once per location.

Every cluster's version is judged against the ``microsoft.flux`` releases of its location; a
sweep of thousands of clusters in a few locations asks ARM once per location, however many
threads ask at the same moment.

A catalogue that cannot be read (``CatalogUnavailable``, after the inventory's retries) is not
asked for again during the job, and is never replaced by an empty one: ``for_cluster`` gives
every cluster of that location a ``read_error`` naming the catalogue, so each is judged
``error`` (``READ_ERROR``) with the reason, in a sweep as in a remediation job (which then
leaves the cluster for a retry), on either engine. Judging versions against nothing would
report them compliant by omission.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from fleet.azure.inventory import Inventory, registered
from fleet.core.errors import CatalogUnavailable
from fleet.evaluate.versions import Catalog
from fleet.observe.observed import ObservedCluster

log = logging.getLogger(__name__)

_NONE = Catalog.from_mapping({})


class CatalogCache:
    """Version catalogues per location, fetched once through the inventory (thread-safe)."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._lock = threading.Lock()
        self._catalogs: dict[str, Catalog | CatalogUnavailable] = {}
        self._fetching: dict[str, threading.Lock] = {}

    def get(self, subscription_id: str, location: str) -> Catalog:
        """The catalogue of a location; raises ``CatalogUnavailable`` when it cannot be read
        (once per location: the failure is remembered)."""
        key = location.lower().replace(" ", "")
        with self._lock:
            found = self._catalogs.get(key)
            # One fetch per location even when many threads ask at once.
            lock = self._fetching.setdefault(key, threading.Lock())
        if found is None:
            with lock:
                with self._lock:
                    found = self._catalogs.get(key)
                if found is None:
                    try:
                        found = Catalog.from_mapping(
                            self._inventory.catalog(subscription_id, location)
                        )
                    except CatalogUnavailable as exc:
                        log.error("%s", exc)
                        found = exc
                    with self._lock:
                        self._catalogs[key] = found
        if isinstance(found, CatalogUnavailable):
            raise found
        return found

    def for_cluster(self, observed: ObservedCluster) -> tuple[ObservedCluster, Catalog]:
        """The catalogue to judge ``observed`` with, and the observation to judge: unchanged,
        or with ``read_error`` set when its location's catalogue cannot be read."""
        facts = observed.facts
        if not registered(facts):
            # ARM refuses the catalogue there too, and no extension can exist to be judged:
            # asking would only fail the location for every other subscription's clusters.
            return observed, _NONE
        try:
            return observed, self.get(facts.subscription_id, facts.location or "global")
        except CatalogUnavailable as exc:
            if observed.read_error is not None:
                return observed, _NONE
            return dataclasses.replace(observed, read_error=str(exc)), _NONE

"""The extension version catalogues a job judges against, fetched once per location.

Every cluster's version is judged against the ``microsoft.flux`` releases of its location; a
sweep of thousands of clusters in a few locations asks ARM once per location, however many
threads ask at the same moment.
"""

from __future__ import annotations

import threading

from fleet.azure.inventory import Inventory
from fleet.evaluate.versions import Catalog


class CatalogCache:
    """Version catalogues per location, fetched once through the inventory (thread-safe)."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._lock = threading.Lock()
        self._catalogs: dict[str, Catalog] = {}
        self._fetching: dict[str, threading.Lock] = {}

    def get(self, subscription_id: str, location: str) -> Catalog:
        key = location.lower().replace(" ", "")
        with self._lock:
            found = self._catalogs.get(key)
            if found is not None:
                return found
            # One fetch per location even when many threads ask at once.
            lock = self._fetching.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                found = self._catalogs.get(key)
            if found is not None:
                return found
            catalog = Catalog.from_mapping(self._inventory.catalog(subscription_id, location))
            with self._lock:
                self._catalogs[key] = catalog
            return catalog

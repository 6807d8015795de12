"""Which releases of the extension catalogue each Azure region serves, on the emulated clock.

Microsoft publishes an extension release region by region over days; the catalogue a location
serves (``.../locations/{location}/extensionTypes/{type}/versions``) lists a release only once it
reached that region. The snapshot's optional ``extensionTypeRegions`` section says when:

    {"microsoft.flux": {"1.17.3": {"westeurope": "2026-12-08T00:00:00Z", "eastus": null}}}

A release named there is served in a location from the given moment of the emulated clock on
(``null``: not yet, in that location); a location it does not name does not serve it; a release
the section does not name is served everywhere (as every catalogue before regions). The admin
route ``POST /_emulator/catalog/publish`` adds a release to a train and publishes it to some
locations (now, or at a given moment): see docs/emulator.md.

Pure functions over the snapshot document: the catalogue reads (catalog.py), the writes that
check a pinned version (writes.py), the install of an extension (lro.py) and the auto-upgrade of
the backend all ask ``trains_in`` for the cluster's location.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fleet.emulator.clock import parse_time

SECTION = "extensionTypeRegions"


def _norm(location: str) -> str:
    return location.lower().replace(" ", "")


def _of_type(doc: Mapping[str, Any], ext_type: str) -> Mapping[str, Any]:
    section = doc.get(SECTION) or {}
    return next((v for k, v in section.items() if str(k).lower() == ext_type.lower()), {})


def served(
    doc: Mapping[str, Any], ext_type: str, version: str, location: str | None, now: datetime
) -> bool:
    """Whether ``location`` serves ``version`` of ``ext_type`` at ``now`` (None: any location,
    the subscription-wide catalogue, which lists a release once some region has it)."""
    regions = _of_type(doc, ext_type).get(version)
    if not isinstance(regions, Mapping):
        return True
    moments = {_norm(str(loc)): at for loc, at in regions.items()}
    if location is None:
        candidates = list(moments.values())
    else:
        candidates = [moments.get(_norm(location))]
    return any(at is not None and parse_time(str(at)) <= now for at in candidates)


def trains_in(
    index: Mapping[str, Mapping[str, list[str]]],
    doc: Mapping[str, Any],
    ext_type: str,
    location: str | None,
    now: datetime,
) -> dict[str, list[str]] | None:
    """The trains of ``ext_type`` (keyed by lower-cased train) as ``location`` serves them at
    ``now``; None when the catalogue does not describe the type."""
    trains = index.get(ext_type.lower())
    if trains is None:
        return None
    return {
        train: [v for v in versions if served(doc, ext_type, v, location, now)]
        for train, versions in trains.items()
    }


def publish(doc: dict[str, Any], payload: Any, now: datetime) -> dict[str, Any]:
    """Add a release to a train of the catalogue and publish it to locations (admin route).

    ``payload``: ``{"version": "1.17.3", "locations": ["westeurope"], "extensionType":
    "microsoft.flux", "releaseTrain": "Stable", "at": "<ISO time>"}`` (type, train and moment
    optional: microsoft.flux, Stable, now). Returns the new catalogue document sections.
    """
    if not isinstance(payload, Mapping):
        raise ValueError('Expected {"version": ..., "locations": [...]}.')
    version = payload.get("version")
    locations = payload.get("locations")
    ext_type = str(payload.get("extensionType") or "microsoft.flux")
    train = str(payload.get("releaseTrain") or "Stable")
    if not isinstance(version, str) or not version:
        raise ValueError("'version' must be a version string such as 1.17.3.")
    if (
        not isinstance(locations, list)
        or not locations
        or not all(isinstance(x, str) and x for x in locations)
    ):
        raise ValueError("'locations' must be a non-empty list of location names.")
    at = payload.get("at")
    moment = parse_time(str(at)) if at is not None else now
    catalog = doc.setdefault("extensionTypeVersions", {})
    type_key = next((k for k in catalog if str(k).lower() == ext_type.lower()), ext_type)
    trains = catalog.setdefault(type_key, {})
    train_key = next((k for k in trains if str(k).lower() == train.lower()), train)
    versions = trains.setdefault(train_key, [])
    if version not in versions:
        versions.insert(0, version)
    section = doc.setdefault(SECTION, {})
    regions = section.setdefault(type_key, {}).setdefault(version, {})
    for location in locations:
        regions[_norm(location)] = moment.isoformat().replace("+00:00", "Z")
    return {"extensionTypeVersions": catalog, SECTION: section}


def check(value: Any) -> str | None:
    """What is wrong with an ``extensionTypeRegions`` section (None: nothing)."""
    if value is None:
        return None
    shape = "must be {extensionType: {version: {location: ISO time or null}}}"
    if not isinstance(value, Mapping):
        return shape
    for versions in value.values():
        if not isinstance(versions, Mapping):
            return shape
        for regions in versions.values():
            if not isinstance(regions, Mapping):
                return shape
            for at in regions.values():
                if at is None:
                    continue
                try:
                    parse_time(str(at))
                except ValueError:
                    return f"{at!r} is not an ISO time ({shape})"
    return None

"""A parsed view of one observation: the Flux extension and flux configurations, with essences.

Evaluation, planning and the observed digest all need the same things from an
``ObservedCluster``: which extension is the Flux one, the flux configurations by name, and the
essence of each. Computing them once per cluster (``view``) and handing the view to all three
is what keeps the engine well under a millisecond per cluster; each function still accepts a
bare observation and builds the view itself when it is not given one.

Observed JSON is untrusted: names, ids and shapes are checked, never assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet.core.diffing import MAPPING as _MAP
from fleet.core.ids import child_id
from fleet.observe import essence
from fleet.observe.observed import ObservedCluster


def resource_name(resource: Any) -> str | None:
    """The name of an ARM child resource: ``name``, else the last segment of ``id``."""
    if not isinstance(resource, _MAP):
        return None
    name = resource.get("name")
    if isinstance(name, str) and name:
        return name
    rid = resource.get("id")
    if isinstance(rid, str) and rid.strip("/"):
        return rid.rstrip("/").rsplit("/", 1)[-1]
    return None


def resource_id(resource: Any, cluster_id: str, child_type: str, name: str) -> str:
    """The observed id of a child resource if it is one of this cluster's, else the canonical
    id built from its name (a reader may hand over JSON without, or with a foreign, id)."""
    if isinstance(resource, _MAP):
        rid = resource.get("id")
        if isinstance(rid, str) and rid.lower().startswith(cluster_id.lower().rstrip("/") + "/"):
            return rid
    return child_id(cluster_id, child_type, name)


def properties(resource: Any) -> Mapping[str, Any]:
    """``properties`` of a resource when it is an object, else an empty mapping."""
    if isinstance(resource, _MAP):
        props = resource.get("properties")
        if isinstance(props, _MAP):
            return props
    return {}


@dataclass(frozen=True, slots=True)
class ConfigView:
    """One observed flux configuration."""

    name: str
    resource: Any
    #: Its id (observed, or canonical when the JSON has none).
    id: str
    #: ``essence.flux_configuration`` of it. Shared: never mutate.
    essence: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ObservedView:
    """What evaluation and planning read from one observation."""

    observed: ObservedCluster
    #: Every extension of type microsoft.flux (normally one).
    flux_extensions: tuple[Any, ...]
    #: The one judged (the one named as desired, else the first by name), or None.
    extension: Any | None
    extension_id: str | None
    #: ``essence.extension`` of it with every setting (not only the governed ones). Shared.
    extension_essence: Mapping[str, Any] | None
    #: Flux configurations by lower-cased name (ARM names are case-insensitive).
    flux: Mapping[str, ConfigView]


def view(observed: ObservedCluster, desired_name: str | None = None) -> ObservedView:
    """Parse an observation once. ``desired_name`` breaks ties between Flux extensions."""
    cid = observed.facts.id
    found = [e for e in observed.extensions if essence.is_flux_extension(e)]
    ext: Any | None = None
    if len(found) == 1:
        ext = found[0]
    elif found:
        # A cluster has at most one; if a reader returns several, choose deterministically.
        wanted = (desired_name or "").lower()
        found.sort(
            key=lambda e: ((resource_name(e) or "").lower() != wanted, resource_name(e) or "")
        )
        ext = found[0]
    ext_id = (
        resource_id(
            ext,
            cid,
            essence.EXTENSIONS,
            resource_name(ext) or desired_name or essence.DEFAULT_EXTENSION_NAME,
        )
        if ext is not None
        else None
    )
    flux: dict[str, ConfigView] = {}
    for resource in observed.flux_configurations:
        name = resource_name(resource)
        if name is None or name.lower() in flux:
            continue
        flux[name.lower()] = ConfigView(
            name,
            resource,
            resource_id(resource, cid, essence.FLUX_CONFIGURATIONS, name),
            essence.flux_configuration(resource),
        )
    return ObservedView(
        observed=observed,
        flux_extensions=tuple(found),
        extension=ext,
        extension_id=ext_id,
        extension_essence=essence.extension(ext) if ext is not None else None,
        flux=flux,
    )

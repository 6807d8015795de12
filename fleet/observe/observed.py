"""Observed state of one cluster, as ARM (or Resource Graph, or a snapshot) reports it.

An ``ObservedCluster`` holds the cluster's facts and the raw ARM JSON of its
Microsoft.KubernetesConfiguration children. Readers fill it; they do no interpretation.
Stripping read-only noise and ARM defaults (the "essence") is done by ``fleet.observe.essence``
so that every source of observations is judged by the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet.core.clusters import ClusterFacts

Json = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ObservedCluster:
    """Everything fleet read about one cluster in one sweep."""

    facts: ClusterFacts
    #: ARM JSON of every extension on the cluster (all types; evaluation picks microsoft.flux).
    extensions: tuple[Json, ...] = ()
    #: ARM JSON of every Flux v2 ``fluxConfigurations`` resource.
    flux_configurations: tuple[Json, ...] = ()
    #: ARM JSON of every Flux v1 ``sourceControlConfigurations`` resource.
    source_control_configurations: tuple[Json, ...] = ()
    #: Set when the cluster's children could not be read after retries: the verdict is
    #: ``READ_ERROR``. The message never contains secrets or response bodies.
    read_error: str | None = None
    #: Where the observation came from: ``arm``, ``graph`` or ``snapshot`` (shown in reports).
    source: str = "arm"
    #: Extra notes from the reader (e.g. "graph rows incomplete, fell back to ARM").
    notes: tuple[str, ...] = field(default=())
    #: The cluster's own ARM JSON when the reader fetched it (``fleet snapshot`` exports it).
    resource: Json | None = None

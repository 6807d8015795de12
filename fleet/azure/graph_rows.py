"""Resource Graph rows as ARM JSON, and the rules that decide when a row is not trusted.

``child_json`` turns a ``kubernetesconfigurationresources`` row into the JSON ARM returns for
the resource, so the engine judges graph and ARM observations alike. Rows of some types carry
PascalCase property keys; ``canonical_properties`` spells them as ARM does, from the key maps of
the SDK's models (user keys, such as ``configurationSettings`` names, are kept as they are).

Resource Graph lags ARM (seconds to minutes). ``incomplete_cluster`` and ``incomplete_child``
say why a row must not be judged: a cluster row without properties, an AKS row without
``powerState``, an Arc row without ``connectivityStatus``, a provisioning state still in
progress (cluster or child), a child row without ``properties``, an extension without
``extensionType`` or ``provisioningState``, a flux or Flux v1 configuration without
``provisioningState``. Such a cluster is read from ARM instead (``fleet.azure.graph``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models as kc_models

from fleet.core.ids import EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS

#: Provisioning states after which nothing is moving (anything else is "in progress").
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled", "cancelled"})

# --------------------------------------------------------------------------- rows to ARM JSON


def _schema_of(type_name: str) -> Any:
    """A canonical-key tree for an SDK (msrest) type name, or None for scalars."""
    if type_name.startswith("[") and type_name.endswith("]"):
        inner = _schema_of(type_name[1:-1])
        return ("list", inner) if inner is not None else None
    if type_name.startswith("{") and type_name.endswith("}"):
        inner = _schema_of(type_name[1:-1])
        return ("map", inner) if inner is not None else None
    model = getattr(kc_models, type_name, None)
    if model is None or not hasattr(model, "_attribute_map"):
        return None
    return _model_schema(model)


@cache
def _model_schema(model: type) -> dict[str, tuple[str, Any]]:
    """``{lower-case key: (canonical key, sub-schema)}`` for one model's wire keys."""
    out: dict[str, tuple[str, Any]] = {}
    for spec in model._attribute_map.values():  # type: ignore[attr-defined]
        wire = str(spec["key"]).replace("\\.", ".")
        parts = wire.split(".")
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part.lower()] = (part, _lazy(str(spec["type"])))
            else:
                existing = node.get(part.lower())
                if existing is None or not isinstance(existing[1], dict):
                    existing = (part, {})
                    node[part.lower()] = existing
                node = existing[1]
    return out


class _lazy:
    """A schema resolved on first use (models refer to each other, sometimes cyclically)."""

    __slots__ = ("_done", "_value", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._value: Any = None
        self._done = False

    def get(self) -> Any:
        if not self._done:
            self._value = _schema_of(self.name)
            self._done = True
        return self._value


def _canonical(value: Any, schema: Any) -> Any:
    """``value`` with its keys spelled as ARM spells them (Resource Graph rows of some types
    carry PascalCase keys); unknown keys and user keys (maps) are kept as they are."""
    if isinstance(schema, _lazy):
        schema = schema.get()
    if schema is None:
        return value
    if isinstance(schema, tuple):
        kind, inner = schema
        if kind == "list" and isinstance(value, list):
            return [_canonical(v, inner) for v in value]
        if kind == "map" and isinstance(value, dict):
            return {k: _canonical(v, inner) for k, v in value.items()}
        return value
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for k, v in value.items():
        known = schema.get(k.lower()) if isinstance(k, str) else None
        if known is None:
            out[k] = v
        else:
            out[known[0]] = _canonical(v, known[1])
    return out


@cache
def _properties_schema(child_type: str) -> dict[str, tuple[str, Any]]:
    model = {
        EXTENSIONS: kc_models.Extension,
        FLUX_CONFIGURATIONS: kc_models.FluxConfiguration,
        SOURCE_CONTROL_CONFIGURATIONS: kc_models.SourceControlConfiguration,
    }[child_type]
    schema: dict[str, tuple[str, Any]] = _model_schema(model)["properties"][1]
    return schema


def canonical_properties(child_type: str, props: dict[str, Any]) -> dict[str, Any]:
    """ARM's key spelling for a child's ``properties`` (a no-op walk when already canonical).

    When every top-level key is spelled as ARM spells it the row came from a source that
    keeps ARM's casing, and the (costly) deep walk is skipped.
    """
    schema = _properties_schema(child_type)
    if all(not isinstance(k, str) or schema.get(k.lower(), (k,))[0] == k for k in props):
        return props
    result: dict[str, Any] = _canonical(props, schema)
    return result


def child_json(row: Mapping[str, Any], child_type: str) -> dict[str, Any]:
    """A ``kubernetesconfigurationresources`` row as the ARM JSON of the resource."""
    rid = str(row["id"])
    props = row.get("properties")
    out: dict[str, Any] = {
        "id": rid,
        "name": row.get("name") or rid.rstrip("/").rsplit("/", 1)[-1],
        "type": child_type,
        "properties": canonical_properties(child_type, props) if isinstance(props, dict) else props,
    }
    for extra in ("identity", "plan"):
        if row.get(extra):
            out[extra] = row[extra]
    return out


# --------------------------------------------------------------------------- completeness


def _in_progress(props: Mapping[str, Any]) -> str | None:
    state = props.get("provisioningState")
    if isinstance(state, str) and state and state.lower() not in TERMINAL_STATES:
        return state
    return None


def incomplete_cluster(row: Mapping[str, Any], cluster_type: str) -> str | None:
    """Why a cluster row cannot be trusted for judging (None when it can)."""
    props = row.get("properties")
    if not isinstance(props, dict) or not props:
        return "the cluster row has no properties"
    if cluster_type == "managedClusters":
        power = props.get("powerState")
        if not isinstance(power, dict) or not power.get("code"):
            return "the cluster row has no powerState"
    elif not props.get("connectivityStatus"):
        return "the cluster row has no connectivityStatus"
    moving = _in_progress(props)
    if moving:
        return f"the cluster is {moving}"
    return None


def incomplete_child(resource: Mapping[str, Any]) -> str | None:
    """Why a configuration row (already in ARM shape) cannot be trusted (None when it can)."""
    child_type = resource["type"]
    what = f"{child_type.rsplit('/', 1)[-1]} {resource.get('name')!r}"
    props = resource.get("properties")
    if not isinstance(props, dict):
        return f"{what} has no properties"
    if not props.get("provisioningState"):
        return f"{what} has no provisioningState"
    if child_type == EXTENSIONS and not props.get("extensionType"):
        return f"{what} has no extensionType"
    moving = _in_progress(props)
    if moving:
        return f"{what} is {moving}"
    return None

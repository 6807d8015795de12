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

import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from azure.mgmt.kubernetesconfiguration.extensions import models as extension_models
from azure.mgmt.kubernetesconfiguration.fluxconfigurations import models as flux_models
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models as v1_models

from fleet.core.ids import EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS

#: Provisioning states after which nothing is moving (anything else is "in progress").
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled", "cancelled"})

# --------------------------------------------------------------------------- rows to ARM JSON
#
# A schema is None (a scalar: kept as it is), ("list", schema), ("map", schema), or a dict
# ``{lower-case key: (canonical key, lazy schema)}`` for an object. The key spellings come from
# the models of the api-versions fleet reads with (``fleet.azure.api_versions``): the TypeSpec
# models of the extensions and fluxConfigurations packages, and the msrest models of Flux v1.


class _lazy:
    """A schema resolved on first use (models refer to each other, sometimes cyclically)."""

    __slots__ = ("_done", "_make", "_value")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._value: Any = None
        self._done = False

    def get(self) -> Any:
        if not self._done:
            self._value = self._make()
            self._done = True
        return self._value


def _msrest_schema_of(type_name: str) -> Any:
    """The schema of an msrest type name (``[Foo]``, ``{Foo}``, ``Foo``, scalars)."""
    if type_name.startswith("[") and type_name.endswith("]"):
        inner = _msrest_schema_of(type_name[1:-1])
        return ("list", inner) if inner is not None else None
    if type_name.startswith("{") and type_name.endswith("}"):
        inner = _msrest_schema_of(type_name[1:-1])
        return ("map", inner) if inner is not None else None
    model = getattr(v1_models, type_name, None)
    if model is None or not hasattr(model, "_attribute_map"):
        return None
    return _msrest_schema(model)


@cache
def _msrest_schema(model: type) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    for spec in model._attribute_map.values():  # type: ignore[attr-defined]
        wire = str(spec["key"]).replace("\\.", ".")
        parts = wire.split(".")
        node = out
        for i, part in enumerate(parts):
            if i == len(parts) - 1:
                name = str(spec["type"])
                node[part.lower()] = (part, _lazy(lambda name=name: _msrest_schema_of(name)))  # type: ignore[misc]
            else:
                existing = node.get(part.lower())
                if existing is None or not isinstance(existing[1], dict):
                    existing = (part, {})
                    node[part.lower()] = existing
                node = existing[1]
    return out


def _typed_schema_of(annotation: Any, models: Any) -> Any:
    """The schema of a TypeSpec model annotation (``Optional[X]``, ``list[X]``, ``dict[str,
    X]``, a model class, scalars and enums)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        for arg in args:
            found = _typed_schema_of(arg, models)
            if found is not None:
                return found
        return None
    if origin is list and args:
        inner = _typed_schema_of(args[0], models)
        return ("list", inner) if inner is not None else None
    if origin is dict and len(args) == 2:
        inner = _typed_schema_of(args[1], models)
        return ("map", inner) if inner is not None else None
    if isinstance(annotation, type) and getattr(annotation, "_is_model", False):
        return _typed_schema(annotation, models)
    return None


@cache
def _typed_schema(model: type, models: Any) -> dict[str, tuple[str, Any]]:
    model()  # the rest fields of a TypeSpec model are worked out on first instantiation
    hints = typing.get_type_hints(model, localns={"_models": models})
    out: dict[str, tuple[str, Any]] = {}
    for attr, field in model._attr_to_rest_field.items():  # type: ignore[attr-defined]
        wire = str(field._rest_name)
        hint = hints.get(attr)
        out[wire.lower()] = (wire, _lazy(lambda hint=hint: _typed_schema_of(hint, models)))  # type: ignore[misc]
    return out


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
    if child_type == SOURCE_CONTROL_CONFIGURATIONS:
        schema: dict[str, tuple[str, Any]] = _msrest_schema(v1_models.SourceControlConfiguration)[
            "properties"
        ][1]
        return schema
    model, models = {
        EXTENSIONS: (extension_models.Extension, extension_models),
        FLUX_CONFIGURATIONS: (flux_models.FluxConfiguration, flux_models),
    }[child_type]
    found: dict[str, tuple[str, Any]] = _typed_schema(model, models)["properties"][1].get()
    return found


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

"""Is an observation well-formed ARM? Malformed answers are read errors, never verdicts.

The essence and evaluation code accept any JSON without raising, which keeps a sweep alive,
but a verdict built from a damaged answer would be wrong: an extension list whose items lost
their ``properties`` reads as "no Flux extension" (``EXTENSION_MISSING``, and remediation would
install one), a ``provisioningState`` of a value fleet does not know reads as healthy. So before
judging, ``problems(observed)`` checks what fleet relies on against the ARM API
(``tests/arm-spec``): every child is an object with a string ``id`` and ``name`` and an object
``properties``; the fields evaluation reads have their documented JSON types (or are null,
where ARM allows it); enumerations are strings; ``provisioningState``, which ARM always
returns, must be there.

What is merely *new* is not damage: Azure adds enum values and properties without notice (a
cluster with an ``OCIRepository`` configuration, a ``provisioningState`` of a later API). An
enum value or property fleet does not know is a note (``fleet.observe.shapes``,
``UNRECOGNISED_SHAPE`` of severity info) and the cluster is judged on what fleet knows.

``checked(observed)`` turns any problem into a read error ("malformed ARM response: ..."), so
the cluster gets ``READ_ERROR`` with the reason: the sweep goes on, remediation leaves the
cluster for a retry, and the next read decides. Evaluation, planning and the observed digest
all start with it, so they agree whichever of them is called first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from fleet.observe.observed import ObservedCluster

_STR = (str,)
_BOOL = (bool,)
_OBJ = (Mapping,)
_LIST = (list, tuple)

#: Fields evaluation and planning read, with their JSON types (null is always allowed here).
_EXTENSION_FIELDS: dict[str, tuple[type, ...]] = {
    "autoUpgradeMinorVersion": _BOOL,
    "releaseTrain": _STR,
    "version": _STR,
    "currentVersion": _STR,
    "configurationSettings": _OBJ,
    "configurationProtectedSettings": _OBJ,
    "scope": _OBJ,
    "statuses": _LIST,
    "errorInfo": _OBJ,
}
_FLUX_FIELDS: dict[str, tuple[type, ...]] = {
    "namespace": _STR,
    "suspend": _BOOL,
    "gitRepository": _OBJ,
    "bucket": _OBJ,
    "azureBlob": _OBJ,
    "ociRepository": _OBJ,
    "kustomizations": _OBJ,
    "configurationProtectedSettings": _OBJ,
    "statuses": _LIST,
    "errorMessage": _STR,
}
_MAX_PROBLEMS = 3


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _enum(value: Any, where: str, out: list[str], *, required: bool = False) -> None:
    # A string fleet does not know is a note (fleet.observe.shapes), not damage.
    if value is None:
        if required:
            out.append(f"{where} is missing")
        return
    if not isinstance(value, str):
        out.append(f"{where} is {_type_name(value)}, not a string")


def _typed(
    props: Mapping[str, Any], fields: Mapping[str, tuple[type, ...]], where: str, out: list[str]
) -> None:
    for name, types in fields.items():
        value = props.get(name)
        if value is not None and not isinstance(value, types):
            out.append(f"{where}.{name} is {_type_name(value)}")


def _resource(resource: Any, where: str, out: list[str]) -> Mapping[str, Any] | None:
    """The resource's ``properties`` when its envelope is sound, else None (problems noted)."""
    if not isinstance(resource, Mapping):
        out.append(f"{where} is {_type_name(resource)}, not a resource")
        return None
    for name in ("id", "name"):
        value = resource.get(name)
        if not isinstance(value, str) or not value:
            out.append(
                f"{where} has no {name!r}"
                if value is None
                else f"{where}.{name} is {_type_name(value)}"
            )
    props = resource.get("properties")
    if not isinstance(props, Mapping):
        out.append(
            f"{where} has no 'properties'"
            if props is None
            else f"{where}.properties is {_type_name(props)}"
        )
        return None
    return props


def _extension(resource: Any, where: str, out: list[str]) -> None:
    props = _resource(resource, where, out)
    if props is None:
        return
    ext_type = props.get("extensionType")
    if not isinstance(ext_type, str) or not ext_type:
        out.append(
            f"{where}.properties.extensionType is {_type_name(ext_type)}"
            if ext_type is not None
            else f"{where} has no extensionType"
        )
    _enum(
        props.get("provisioningState"),
        f"{where}.properties.provisioningState",
        out,
        required=True,
    )
    _typed(props, _EXTENSION_FIELDS, f"{where}.properties", out)


def _flux(resource: Any, where: str, out: list[str]) -> None:
    props = _resource(resource, where, out)
    if props is None:
        return
    _enum(
        props.get("provisioningState"),
        f"{where}.properties.provisioningState",
        out,
        required=True,
    )
    _enum(props.get("complianceState"), f"{where}.properties.complianceState", out)
    _enum(props.get("sourceKind"), f"{where}.properties.sourceKind", out)
    _enum(props.get("scope"), f"{where}.properties.scope", out)
    _typed(props, _FLUX_FIELDS, f"{where}.properties", out)
    kustomizations = props.get("kustomizations")
    if isinstance(kustomizations, Mapping):
        for name, value in kustomizations.items():
            if not isinstance(value, Mapping):
                out.append(f"{where}.properties.kustomizations.{name} is {_type_name(value)}")


def _flux_v1(resource: Any, where: str, out: list[str]) -> None:
    props = _resource(resource, where, out)
    if props is not None:
        _enum(
            props.get("provisioningState"),
            f"{where}.properties.provisioningState",
            out,
        )


def problems(observed: ObservedCluster) -> list[str]:
    """What makes the observation unusable (empty when it is well-formed)."""
    out: list[str] = []
    facts = observed.facts
    if facts.cluster_type == "managedClusters":
        _enum(facts.power_state, "cluster powerState.code", out)
    else:
        _enum(facts.connectivity_status, "cluster connectivityStatus", out)
    if observed.resource is not None:
        if not isinstance(observed.resource, Mapping):
            out.append(f"the cluster is {_type_name(observed.resource)}, not a resource")
        elif not isinstance(observed.resource.get("properties", {}), Mapping):
            out.append(
                f"the cluster's properties is {_type_name(observed.resource.get('properties'))}"
            )
    for kind, children, check in (
        ("extensions", observed.extensions, _extension),
        ("fluxConfigurations", observed.flux_configurations, _flux),
        ("sourceControlConfigurations", observed.source_control_configurations, _flux_v1),
    ):
        if not isinstance(children, tuple | list):
            out.append(f"{kind} is {_type_name(children)}, not a list")
            continue
        for i, child in enumerate(children):
            check(child, f"{kind}[{i}]", out)
            if len(out) > _MAX_PROBLEMS:
                break
    return out


def describe(found: list[str]) -> str:
    """One line for ``read_error``: the first few problems."""
    shown = "; ".join(found[:_MAX_PROBLEMS])
    more = f" (and {len(found) - _MAX_PROBLEMS} more)" if len(found) > _MAX_PROBLEMS else ""
    return f"malformed ARM response: {shown}{more}"


def checked(observed: ObservedCluster) -> ObservedCluster:
    """``observed``, or a copy with ``read_error`` set when it is not well-formed ARM."""
    if observed.read_error is not None:
        return observed
    found = problems(observed)
    return replace(observed, read_error=describe(found)) if found else observed

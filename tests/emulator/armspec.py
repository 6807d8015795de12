"""Validate JSON against the Microsoft.KubernetesConfiguration OpenAPI (swagger 2.0) definitions.

The swagger files vendored in ``tests/arm-spec`` (copies of Azure/azure-rest-api-specs files;
``tests/arm-spec/SOURCES.md`` names each one's source and commit) are
turned into one JSON Schema (draft 4) document: every definition of every file reachable by
``$ref`` becomes ``#/definitions/<file>:<name>``, so references across files resolve.

Each api-version the emulator serves has its own files (``DEFINITIONS[version]``): an answer is
checked against the definitions of the version it was asked with. ``extensible_enums`` relaxes
the enumerations the spec marks ``modelAsString`` (clients must accept values they do not
know), for answers that carry a value only a later version defines.

Swagger-isms are translated:

- ``x-nullable: true`` allows ``null`` besides the declared schema (``anyOf``); a property
  without it must not be ``null``;
- ``x-ms-*``, ``readOnly``, ``description`` and friends are dropped (no meaning for validation);
- ``allOf`` of ``ProxyResource`` is flattened into the definition (``id``, ``name``, ``type``).

``strict`` (the default) closes the world: an object that declares ``properties`` admits no
others, so a misspelt field in an emulator response fails. The only extras allowed are named in
``EXTRAS``: the ``startTime``/``endTime`` of an async operation, which ARM's generic
OperationStatusResult (common-types v5) has and the 2022-03-01 KubernetesConfiguration copy
omits.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SPEC_ROOT = Path(__file__).resolve().parents[1] / "arm-spec"
KC_DIR = SPEC_ROOT / "kubernetesconfiguration/resource-manager/Microsoft.KubernetesConfiguration"
STABLE = KC_DIR / "stable/2023-05-01"
FLUX_2025 = KC_DIR / "fluxConfigurations/stable/2025-04-01"
EXTENSIONS_2025 = KC_DIR / "extensions/stable/2025-03-01"
TYPES_2026 = KC_DIR / "extensionTypes/stable/2026-05-01"
#: The example files of each api-version (the 2022-11-01 ones are 2023-05-01's operations).
EXAMPLES_BY_VERSION = {
    "2023-05-01": [
        *sorted((STABLE / "examples").glob("*.json")),
        *sorted((KC_DIR / "stable/2022-11-01/examples").glob("*.json")),
    ],
    "2025-04-01": sorted((FLUX_2025 / "examples").glob("*.json")),
    "2025-03-01": sorted((EXTENSIONS_2025 / "examples").glob("*.json")),
    "2026-05-01": sorted((TYPES_2026 / "examples").glob("*.json")),
}
EXAMPLES = [p for paths in EXAMPLES_BY_VERSION.values() for p in paths]
_V2_ERROR = (SPEC_ROOT / "common-types/resource-management/v2/types.json", "ErrorResponse")
_V3_ERROR = (SPEC_ROOT / "common-types/resource-management/v3/types.json", "ErrorResponse")
_OPERATION = (KC_DIR / "common/2022-03-01/definitions.json", "OperationStatusResult")

#: Where each definition a response is checked against lives, per api-version.
DEFINITIONS_BY_VERSION: dict[str, dict[str, tuple[Path, str]]] = {
    "2025-04-01": {
        "FluxConfiguration": (FLUX_2025 / "fluxconfiguration.json", "FluxConfiguration"),
        "FluxConfigurationsList": (FLUX_2025 / "fluxconfiguration.json", "FluxConfigurationsList"),
        "OperationStatusResult": (FLUX_2025 / "fluxconfiguration.json", "OperationStatusResult"),
        "ErrorResponse": _V3_ERROR,
    },
    "2025-03-01": {
        "Extension": (EXTENSIONS_2025 / "extensions.json", "Extension"),
        "ExtensionsList": (EXTENSIONS_2025 / "extensions.json", "ExtensionsList"),
        "OperationStatusResult": _OPERATION,
        "ErrorResponse": _V2_ERROR,
    },
    "2026-05-01": {
        name: (TYPES_2026 / "extensionTypes.json", name)
        for name in (
            "ExtensionType",
            "ExtensionTypesList",
            "ExtensionTypeVersionForReleaseTrain",
            "ExtensionTypeVersionsList",
        )
    }
    | {"ErrorResponse": _V3_ERROR},
}

#: Where each definition a response is checked against lives (2023-05-01).
DEFINITIONS = {
    "Extension": (STABLE / "extensions.json", "Extension"),
    "ExtensionsList": (STABLE / "extensions.json", "ExtensionsList"),
    "FluxConfiguration": (STABLE / "fluxconfiguration.json", "FluxConfiguration"),
    "FluxConfigurationsList": (STABLE / "fluxconfiguration.json", "FluxConfigurationsList"),
    "SourceControlConfiguration": (
        STABLE / "kubernetesconfiguration.json",
        "SourceControlConfiguration",
    ),
    "SourceControlConfigurationList": (
        STABLE / "kubernetesconfiguration.json",
        "SourceControlConfigurationList",
    ),
    "OperationStatusResult": (
        KC_DIR / "common/2022-03-01/definitions.json",
        "OperationStatusResult",
    ),
    "OperationStatusList": (KC_DIR / "common/2022-03-01/definitions.json", "OperationStatusList"),
    "ResourceProviderOperationList": (
        KC_DIR / "common/2022-03-01/definitions.json",
        "ResourceProviderOperationList",
    ),
    "ErrorResponse": (
        SPEC_ROOT / "common-types/resource-management/v2/types.json",
        "ErrorResponse",
    ),
}

DEFINITIONS_BY_VERSION["2023-05-01"] = DEFINITIONS

#: Properties ARM sends beyond the vendored definitions (see the module docstring).
EXTRAS: dict[str, dict[str, Any]] = {
    "OperationStatusResult": {
        "startTime": {"type": "string"},
        "endTime": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
}

_DROP = {"description", "readOnly", "title", "example", "externalDocs", "discriminator", "format"}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


class ArmSpec:
    """The vendored specification as a JSON Schema document."""

    def __init__(
        self,
        root: Path = SPEC_ROOT,
        *,
        strict: bool = True,
        version: str = "2023-05-01",
        extensible_enums: bool = False,
    ) -> None:
        self.root = root
        self.strict = strict
        self.version = version
        self.extensible_enums = extensible_enums
        self._files: dict[Path, dict[str, Any]] = {}
        self._defs: dict[str, Any] = {}
        self._pending: list[tuple[Path, str]] = []

    # names and references

    def _name(self, path: Path, definition: str) -> str:
        # Slashes would read as JSON-pointer separators in "$ref": use dots.
        relative = path.resolve().relative_to(self.root.resolve())
        return f"{str(relative).replace('/', '.')}:{definition}"

    def _target(self, ref: str, current: Path) -> tuple[Path, str]:
        file_part, _, pointer = ref.partition("#")
        path = (current.parent / file_part).resolve() if file_part else current.resolve()
        prefix = "/definitions/"
        if not pointer.startswith(prefix):
            raise ValueError(f"unsupported $ref {ref!r} in {current}")
        return path, pointer[len(prefix) :]

    def _raw(self, path: Path, definition: str) -> dict[str, Any]:
        if path not in self._files:
            self._files[path] = _load(path)
        found: dict[str, Any] = self._files[path]["definitions"][definition]
        return found

    def _ref(self, ref: str, current: Path) -> dict[str, Any]:
        path, definition = self._target(ref, current)
        name = self._name(path, definition)
        if name not in self._defs:
            self._defs[name] = None  # reserve: recursive definitions (ErrorDetail) terminate
            self._defs[name] = self._convert_definition(path, definition)
        return {"$ref": f"#/definitions/{name}"}

    # conversion

    def _convert_definition(self, path: Path, definition: str) -> dict[str, Any]:
        node = copy.deepcopy(self._raw(path, definition))
        extras = EXTRAS.get(definition, {})
        if extras:
            node.setdefault("properties", {}).update(copy.deepcopy(extras))
        return self._convert(node, path, top=True)

    def _collect(self, node: dict[str, Any], path: Path) -> dict[str, Any]:
        """Converted properties of a node, including those its ``allOf`` parents declare."""
        props: dict[str, Any] = {}
        for parent in node.get("allOf", ()):
            if "$ref" in parent:
                ppath, pname = self._target(parent["$ref"], path)
                props.update(self._collect(self._raw(ppath, pname), ppath))
            else:
                props.update(self._collect(parent, path))
        for key, value in node.get("properties", {}).items():
            props[key] = self._convert(value, path)
        return props

    def _convert(self, node: Any, path: Path, top: bool = False) -> Any:
        if isinstance(node, list):
            return [self._convert(n, path) for n in node]
        if not isinstance(node, dict):
            return node
        nullable = bool(node.get("x-nullable"))
        if self.extensible_enums and (node.get("x-ms-enum") or {}).get("modelAsString"):
            node = {k: v for k, v in node.items() if k != "enum"}
        if "$ref" in node:
            out: dict[str, Any] = self._ref(node["$ref"], path)
        else:
            out = {}
            has_props = "properties" in node or "allOf" in node
            if has_props:
                out["properties"] = self._collect(node, path)
                if node.get("type"):
                    out["type"] = node["type"]
                if self.strict and "additionalProperties" not in node:
                    out["additionalProperties"] = False
            for key, value in node.items():
                if key in _DROP or key.startswith("x-") or key in ("properties", "allOf"):
                    continue
                if key == "type" and has_props:
                    continue
                if key in ("items", "additionalProperties") and isinstance(value, dict):
                    out[key] = self._convert(value, path)
                else:
                    out[key] = value
        if nullable:
            return {"anyOf": [out, {"type": "null"}]}
        return out

    # validation

    def schema(self, definition: str) -> dict[str, Any]:
        path, name = DEFINITIONS_BY_VERSION[self.version][definition]
        ref = self._ref(f"{path.name}#/definitions/{name}", path)
        return {
            "$schema": "http://json-schema.org/draft-04/schema#",
            **ref,
            "definitions": self._defs,
        }

    def errors(self, definition: str, instance: Any) -> list[str]:
        """Every violation of ``definition`` by ``instance`` (empty when valid)."""
        validator = jsonschema.Draft4Validator(self.schema(definition))
        return sorted(
            f"/{'/'.join(map(str, err.absolute_path))}: {err.message}"
            for err in validator.iter_errors(instance)
        )

    def validate(self, definition: str, instance: Any) -> None:
        problems = self.errors(definition, instance)
        if problems:
            raise AssertionError(f"{definition} does not validate:\n" + "\n".join(problems[:20]))


@cache
def spec(
    strict: bool = True, version: str = "2023-05-01", extensible_enums: bool = False
) -> ArmSpec:
    return ArmSpec(strict=strict, version=version, extensible_enums=extensible_enums)


def load_example(path: Path) -> dict[str, Any]:
    return _load(path)

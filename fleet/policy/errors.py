"""Pydantic validation errors as ``(line, field path, message)`` for policy authors.

Used by ``fleet.policy.loading``. A pydantic error has a ``loc`` (the camelCase aliases, list
indexes, ``[key]`` for a bad mapping key, and sometimes union member tags) and a message meant
for programmers. Here the location is matched against the document's data to find the line —
the key's line for an unknown or bad key, the value's line for a bad value, the parent's for a
missing field — and the message is rewritten in the policy's terms: "expected a list, got a
string", "unknown field 'kustomisations'; did you mean 'kustomizations'?".

The input value is never part of a message: it could be a secret.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Annotated, Any, Union

from pydantic import BaseModel

from fleet.policy.models import PATTERN_HINTS, Policy
from fleet.policy.yamltree import Document, FieldPath


def format_path(path: Sequence[str | int]) -> str:
    """``("spec", "fluxConfigurations", 0, "name")`` -> ``spec.fluxConfigurations[0].name``.

    Keys that contain dots stay as they are (``configurationSettings.multiTenancy.enforce``);
    keys that would break the one-line format (newlines, control characters) are quoted.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if part.isprintable() and part.strip() == part and part else json.dumps(part)
        out += f".{text}" if out else text
    return out


def describe_error(error: Mapping[str, Any], doc: Document) -> tuple[int, str, str] | None:
    """``(line, path, message)`` of one pydantic error, or None when it falls under a value the
    YAML layer has already reported (it would only repeat that problem)."""
    kind = str(error["type"])
    loc = tuple(error["loc"])
    path: list[str | int] = []
    node: Any = doc.data
    missing: str | None = None
    bad_key = False
    for index, part in enumerate(loc):
        if part == "[key]":
            bad_key = True
            break
        if _has(node, part):
            node = node[part]
            path.append(part)
        elif kind == "missing" and index == len(loc) - 1 and isinstance(part, str):
            missing = part
        # Anything else is a tag pydantic adds (a union member such as ``str``): not data.
    found: FieldPath = tuple(path)
    if doc.is_under_problem(found):
        return None
    if kind == "missing":
        line = doc.key_line(found)
        return line, _path(found, missing), "required field is missing"
    if kind == "extra_forbidden" or bad_key:
        line = doc.key_line(found)
        return line, _path(found), _message(error, found, bad_key)
    return doc.value_line(found), _path(found), _message(error, found, bad_key)


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _path(found: FieldPath, extra: str | None = None) -> str:
    return format_path((*found, extra) if extra else found)


# --- messages ------------------------------------------------------------------------------

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date without a time of day",
}


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, date):
        return "a date"
    return "a value of another type"


def _message(error: Mapping[str, Any], found: FieldPath, bad_key: bool) -> str:
    kind = str(error["type"])
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        return _unknown_field(found)
    prefix = ""
    if bad_key:
        key = found[-1] if found else ""
        prefix = f"invalid name {key!r}: " if isinstance(key, str) else "invalid key: "
    if kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {_kind_of(value)}"
        # YAML reads `true`, `1.20` or `0` as non-strings where ARM wants strings. A boolean
        # can be shown safely; a number is not echoed (it could be part of a secret).
        if kind == "string_type" and isinstance(value, bool):
            message += f'; quote it: "{str(value).lower()}"'
        elif kind == "string_type" and isinstance(value, int | float):
            message += "; quote it"
        return prefix + message
    if kind == "literal_error":
        return prefix + f"expected {ctx.get('expected', 'one of the allowed values')}"
    if kind == "enum":
        return prefix + f"expected {ctx.get('expected', 'one of the allowed values')}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return prefix + PATTERN_HINTS.get(pattern, f"does not match the pattern {pattern}")
    if kind in ("value_error", "assertion_error"):
        return prefix + str(ctx.get("error", error["msg"])).strip()
    msg = str(error["msg"])
    for old, new in (
        ("Input should be", "must be"),
        ("String should", "must"),
        ("List should", "must"),
        ("Dictionary should", "must"),
    ):
        if msg.startswith(old):
            msg = new + msg[len(old) :]
            break
    return prefix + msg


def _unknown_field(found: FieldPath) -> str:
    key = found[-1] if found else ""
    shown = format_path([key]) if isinstance(key, str) else str(key)
    model = model_at(found[:-1])
    if model is None:
        return f"unknown field {shown!r}"
    valid = field_names(model)
    suggestion = _suggest(str(key), valid)
    if suggestion:
        return f"unknown field {shown!r}; did you mean {suggestion!r}?"
    return f"unknown field {shown!r}; expected one of: {', '.join(valid)}"


def _suggest(key: str, valid: list[str]) -> str | None:
    # Compare case-insensitively without separators so that `source_kind`, `SourceKind` and
    # `sourcekind` all find `sourceKind`.
    def norm(s: str) -> str:
        return s.lower().replace("_", "").replace("-", "")

    by_norm = {norm(v): v for v in valid}
    if norm(key) in by_norm:
        return by_norm[norm(key)]
    match = difflib.get_close_matches(norm(key), list(by_norm), n=1, cutoff=0.6)
    return by_norm[match[0]] if match else None


# --- the model at a path -------------------------------------------------------------------


def field_names(model: type[BaseModel]) -> list[str]:
    """The YAML names (aliases) of a model's fields, in declaration order."""
    return [yaml_name(name, model) for name in model.model_fields]


def yaml_name(attribute: str, model: type[BaseModel]) -> str:
    info = model.model_fields[attribute]
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return alias or attribute


def model_at(path: FieldPath) -> type[BaseModel] | None:
    """The model whose instance sits at ``path`` of a policy document, if any."""
    current: Any = Policy
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            names = {yaml_name(a, current): a for a in current.model_fields}
            if not isinstance(part, str) or part not in names:
                return None
            current = current.model_fields[names[part]].annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is list and isinstance(part, int) and args:
            current = args[0]
        elif origin is dict and isinstance(part, str) and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to ``X`` (other unions are left alone)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation

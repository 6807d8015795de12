"""The JSON Schema of a policy document, for editors and other tools (``fleet schema``).

Built from the pydantic models, so it cannot drift from what the loader accepts; the field
descriptions are the models' attribute docstrings. The committed copy, ``docs/policy.schema.json``,
is what the example policies point at with ``# yaml-language-server: $schema=...`` (a test keeps
it equal to this output).

The schema checks shapes, types, patterns and the simple cross-field rules (one source, a pinned
version without auto-upgrade); the rest (dependsOn cycles, globs, cron, duplicate names) is
checked only by ``fleet validate``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fleet.policy.models import Policy

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: A stable identifier (not a download location): documents refer to the schema by path.
SCHEMA_ID = "urn:fleet:schema:policy:v1"

_RST_LITERAL = re.compile(r"``(.+?)``")


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one ``FluxPolicy`` YAML document."""
    generated = Policy.model_json_schema(by_alias=True, mode="validation")
    body = _tidy(generated)
    assert isinstance(body, dict)
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "fleet FluxPolicy (fleet/v1)",
        "description": (
            "A fleet policy document: which AKS and Azure Arc clusters must carry which "
            "microsoft.flux extension settings and Flux v2 fluxConfigurations, and how "
            "remediation may enforce them. One or more documents per YAML file. "
            "Check a file with `fleet validate FILE`."
        ),
    }
    schema.update({k: v for k, v in body.items() if k not in ("title", "description")})
    return schema


def render() -> str:
    """The schema as the text ``fleet schema`` prints.

    Keys stay in declaration order (``$schema`` first, fields as in the models), which is
    deterministic and reads like the reference.
    """
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def _tidy(node: Any, *, in_properties: bool = False) -> Any:
    """Make pydantic's output editor-friendly.

    - ``title`` of a property is pydantic's mangling of the name ("Syncintervalinseconds"):
      editors show the key itself, so it goes (model titles stay);
    - ``default: null`` would make editors complete ``key: null``; it goes;
    - reStructuredText ````literal```` becomes Markdown ```literal```.
    """
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if in_properties:
            out[key] = _tidy_property(value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = _tidy(value, in_properties=True)
        elif key == "description" and isinstance(value, str):
            out[key] = _RST_LITERAL.sub(r"`\1`", value)
        else:
            out[key] = _tidy(value)
    return out


def _tidy_property(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    cleaned = _tidy(schema)
    cleaned.pop("title", None)
    if "default" in cleaned and cleaned["default"] is None:
        del cleaned["default"]
    return cleaned

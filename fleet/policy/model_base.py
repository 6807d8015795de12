"""The configuration every policy model shares (docs/contracts.md, Policy file).

Every model forbids unknown keys and is frozen; field names are the YAML names (camelCase),
and the attribute docstrings become the descriptions of ``fleet schema`` and
docs/policy-reference.md. ``fleet.policy.models``, ``fleet.policy.secret_refs`` and
``fleet.policy.timing`` build on it (``_Model`` is private to the package: nothing outside
``fleet.policy`` derives from it).
"""

from __future__ import annotations

from pydantic import AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

_CONFIG = ConfigDict(
    extra="forbid",
    frozen=True,
    alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
    populate_by_name=True,
    use_attribute_docstrings=True,
    str_strip_whitespace=False,
)


class _Model(BaseModel):
    model_config = _CONFIG

"""Overrides: where policies of different priority disagreed on a value and the higher one won.

Rendering the desired state decides them (``fleet.desired.render``); verdicts carry them so a
report can say which policy's value a cluster is judged against.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

_CONFIG = ConfigDict(
    frozen=True,
    alias_generator=to_camel,
    populate_by_name=True,
    extra="forbid",
    ser_json_timedelta="iso8601",
)


class Override(BaseModel):
    """A value where policies of different priority disagreed and the higher one won."""

    model_config = _CONFIG

    resource: str
    path: str
    winner: str
    loser: str
    winner_value: Any = None
    loser_value: Any = None

"""The ``health`` block of a policy (docs/contracts.md, Policy file; docs/policy-reference.md,
"Flux health"): how long Flux may stay ``Pending`` and how old its status may be.

The fluxconfig agent on each cluster reports the state of every Flux object it manages
(``statuses[]``), the configuration's ``complianceState`` and when it last reported
(``statusUpdatedAt``). ``fleet.evaluate.health`` judges those against these limits:

* ``pendingFor``: a configuration ``Pending`` for longer (counted from its last change) is
  ``FLUX_CONFIG_PENDING``;
* ``staleAfter``: a ``statusUpdatedAt`` older than this is ``FLUX_STATUS_STALE``, and the
  configuration's Flux status is then not judged at all (it cannot be trusted).

Durations are ISO-8601 (``PT1H``, ``P1D``, as elsewhere in the policy format) or the short
forms ``90m``, ``1h``, ``2d``. Pure: the limits are data; "now" comes from the sweep.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator

from fleet.policy.model_base import _Model
from fleet.policy.timing import parse_duration

_SHORT = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
#: The limits a policy may set: at least a minute (the agent reports every few minutes), at
#: most 30 days (longer and the check would never fire in practice).
SHORTEST = timedelta(minutes=1)
LONGEST = timedelta(days=30)
DEFAULT_PENDING_FOR = "PT1H"
DEFAULT_STALE_AFTER = "PT6H"


def parse_limit(value: str) -> timedelta:
    """``PT1H``, ``P1D``, ``90m``, ``1h``, ``2d`` as a timedelta; ValueError otherwise."""
    short = _SHORT.fullmatch(value.strip())
    if short is not None:
        return timedelta(**{_UNITS[short.group(2)]: int(short.group(1))})
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration such as PT1H, P1D, 90m, 1h or 2d") from None


def _check_limit(value: str) -> str:
    length = parse_limit(value)
    if not SHORTEST <= length <= LONGEST:
        raise ValueError(f"a health limit lasts from one minute to 30 days, not {value}")
    return value


HealthLimit = Annotated[str, AfterValidator(_check_limit)]


class FluxHealth(_Model):
    """How Flux's own status is judged on the flux configurations this policy declares."""

    pending_for: HealthLimit = DEFAULT_PENDING_FOR
    """How long a configuration may stay ``complianceState: Pending`` after its last change
    before it is ``FLUX_CONFIG_PENDING`` (default ``PT1H``; ``1h`` works too)."""
    stale_after: HealthLimit = DEFAULT_STALE_AFTER
    """How old ``statusUpdatedAt`` may be before the status is ``FLUX_STATUS_STALE`` and is
    not trusted (default ``PT6H``)."""
    objects: bool = True
    """Report each Flux object of ``statuses[]`` that is not ready (``FLUX_OBJECT_NOT_READY``)."""

    @property
    def pending_limit(self) -> timedelta:
        return parse_limit(self.pending_for)

    @property
    def stale_limit(self) -> timedelta:
        return parse_limit(self.stale_after)


#: What a policy that says nothing about health gets.
DEFAULT_HEALTH = FluxHealth()

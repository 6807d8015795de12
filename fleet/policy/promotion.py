"""The policy fields of extension version promotion (docs/promotion.md).

``extension.versionPolicy: promote`` hands the extension's version to fleet: it pins
``autoUpgradeMinorVersion: false`` and moves clusters to a new catalogue release wave by wave
(the waves of ``remediation.rollout``), each wave only after the waves before it ran the
release for ``promotion.soak`` without a finding of ``promotion.gateOn``. ``PromotionFields``
is the part of ``ExtensionSpec`` (``fleet.policy.models``) that says so; ``check`` holds the
rules that need more than one field (``fleet.policy.checks`` reports them with their path).

The default gate is defined here once, as strings: codes that this fleet does not know yet
(a finding added later, such as ``FLUX_OBJECT_NOT_READY``) are accepted and simply never
match until it does.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from fleet.core.vocabulary import Code
from fleet.policy.model_base import _Model

#: The findings that halt a promotion when a cluster of an earlier wave shows one.
DEFAULT_GATE: tuple[str, ...] = (
    "FLUX_CONFIG_NONCOMPLIANT",
    "FLUX_CONFIG_FAILED",
    "EXTENSION_FAILED",
    "FLUX_OBJECT_NOT_READY",
    # A canary whose Flux has not converged, or whose report is too old to trust, has not
    # shown the release healthy: it holds the next wave as a failure does.
    "FLUX_CONFIG_PENDING",
    "FLUX_STATUS_STALE",
)
DEFAULT_SOAK = "24h"
#: The longest soak: a promotion that waits longer than this between waves is a typo.
LONGEST_SOAK = timedelta(days=90)

_SHORT = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ISO = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def parse_soak(value: str) -> timedelta:
    """``24h``, ``90m``, ``2d``, ``1d12h``, ``0s`` or ISO-8601 (``PT24H``, ``P2D``)."""
    text = value.strip()
    match = _SHORT.fullmatch(text.lower()) if text[:1].isdigit() else _ISO.fullmatch(text)
    if match is None or not any(g is not None for g in match.groups()) or text.endswith("T"):
        raise ValueError(f"{value!r} is not a duration such as 24h, 90m, 2d or PT24H")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    length = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if length > LONGEST_SOAK:
        raise ValueError(f"a soak lasts at most 90 days, not {value}")
    return length


def _check_soak(value: str) -> str:
    parse_soak(value)
    return value


def known_gate_code(value: str) -> bool:
    """A code fleet reports, or one of the default gate (known by name before it exists)."""
    return value in Code.__members__.values() or value in DEFAULT_GATE


def _check_gate(value: list[str]) -> list[str]:
    for code in value:
        if not known_gate_code(code):
            raise ValueError(f"{code!r} is not a finding code (e.g. {', '.join(DEFAULT_GATE[:2])})")
    return value


Soak = Annotated[str, AfterValidator(_check_soak)]
GateCodes = Annotated[list[str], AfterValidator(_check_gate)]


class Promotion(_Model):
    """How ``versionPolicy: promote`` moves a new release through the rollout's waves."""

    soak: Soak = DEFAULT_SOAK
    """How long every cluster of a wave must run a release before the next wave gets it
    (``24h``, ``90m``, ``2d`` or ISO-8601 such as ``PT24H``)."""
    gate_on: GateCodes | None = None
    """Finding codes that halt the promotion when a cluster of an earlier wave that runs the
    release shows one; by default ``FLUX_CONFIG_NONCOMPLIANT``, ``FLUX_CONFIG_FAILED``,
    ``EXTENSION_FAILED``, ``FLUX_OBJECT_NOT_READY``, ``FLUX_CONFIG_PENDING`` and
    ``FLUX_STATUS_STALE`` (a canary that has not converged, or whose report is too old to
    trust, has not shown the release healthy)."""

    @property
    def soak_time(self) -> timedelta:
        return parse_soak(self.soak)

    @property
    def gate(self) -> frozenset[str]:
        return frozenset(DEFAULT_GATE if self.gate_on is None else self.gate_on)


class PromotionFields(_Model):
    """The version-policy fields of ``ExtensionSpec``."""

    version_policy: Literal["promote"] | None = Field(default=None)
    """``promote``: fleet pins ``autoUpgradeMinorVersion: false`` and moves the clusters to
    each new catalogue release wave by wave (docs/promotion.md); leave it out to follow the
    release train or a pinned ``version``."""
    promotion: Promotion | None = None
    """Soak time and gate of ``versionPolicy: promote`` (defaults: 24h, the Flux health
    findings)."""

    @property
    def promotes(self) -> bool:
        return self.version_policy == "promote"

    def promotion_or_default(self) -> Promotion:
        return self.promotion or Promotion()


def check(ext: Any) -> list[tuple[tuple[str, ...], str]]:
    """Rules across fields: (path below ``spec.extension``, message) for each broken one."""
    if not isinstance(ext, PromotionFields):
        return []
    if not ext.promotes:
        if ext.promotion is not None:
            return [(("promotion",), "promotion needs versionPolicy: promote")]
        return []
    problems: list[tuple[tuple[str, ...], str]] = []
    if getattr(ext, "version", None) is not None:
        problems.append(
            (("version",), "versionPolicy: promote chooses the version; leave version out")
        )
    if getattr(ext, "auto_upgrade_minor_version", None) is True:
        problems.append(
            (
                ("autoUpgradeMinorVersion",),
                "versionPolicy: promote pins autoUpgradeMinorVersion: false, not true",
            )
        )
    return problems

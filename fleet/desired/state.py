"""The desired state of one cluster: what ``fleet.desired.render`` hands to evaluation and
planning.

``DesiredState`` holds the merged extension (``DesiredExtension``) and flux configurations
(``DesiredFluxConfig``), who owns each governed field, the policies' modes and remediation
switches, and the conflicts and overrides the merge found (docs/contracts.md, Policy file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fleet.core.ids import child_id
from fleet.desired.overrides import Override
from fleet.policy.health import DEFAULT_HEALTH, FluxHealth
from fleet.policy.models import DEFAULT_WINDOW

#: Pseudo-path of ``versionWindow``: a policy field, not an ARM property.
WINDOW_PATH = "/versionWindow"
NAME_PATH = "/name"
VERSION_PATH = "/properties/version"
AUTO_UPGRADE_PATH = "/properties/autoUpgradeMinorVersion"


def relative_id(child_type: str, name: str) -> str:
    """A child resource's id relative to its cluster's (``/providers/...``).

    Rendered resources are stored this way so that the cluster-independent part of a desired
    state can be shared by every cluster with the same policies (``fleet.desired.render``).
    """
    return child_id("", child_type, name)


@dataclass(frozen=True, slots=True)
class Conflict:
    """Policies of equal priority that disagree on one field of one resource."""

    resource: str
    path: str
    policies: tuple[str, ...]
    #: policy -> the value it asks for (secret references as ``env:VAR``, never values).
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RemediationFlags:
    """The remediation switches of one policy."""

    delete_unmanaged: bool = False
    migrate_flux_v1: bool = False
    recreate_on_immutable_change: bool = False


@dataclass(frozen=True, slots=True)
class ExemptPolicy:
    """A targeting policy that is exempt on this cluster (reported, not judged)."""

    name: str
    reason: str
    expires_on: date | None
    mode: str


@dataclass(frozen=True, slots=True)
class PromotionRule:
    """The promotion of the extension's version on one cluster (``versionPolicy: promote``)."""

    policy: str
    soak_seconds: float
    #: Finding codes that halt the promotion (strings: codes unknown here never match).
    gate: frozenset[str]
    #: Every policy that promotes (they own the version fleet pins).
    policies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DesiredExtension:
    """The merged ``microsoft.flux`` extension."""

    #: Resource name to create it under (``flux`` unless a policy names it).
    name: str
    resource: str
    #: The desired ARM body ``{"properties": {...}}``: extensionType, scope and every merged,
    #: non-conflicting field. Secrets are not in it (see ``protected``).
    body: Mapping[str, Any]
    #: Essence of ``body`` restricted to the governed fields (what evaluation compares).
    essence: Mapping[str, Any]
    #: Governed property names (besides extensionType and scope, always governed).
    fields: frozenset[str]
    #: True when a policy names the extension (then a differing name is drift).
    name_governed: bool
    #: Governed ``configurationSettings`` keys.
    settings: frozenset[str]
    #: Governed protected settings: setting name -> ``SecretRef.describe()``.
    protected: Mapping[str, str]
    #: JSON pointer of each governed field -> the policies that ask for its value.
    owners: Mapping[str, tuple[str, ...]]
    #: Every (non-exempt) policy that declares ``extension``.
    policies: tuple[str, ...]
    version_window: int
    #: Owners of ``versionWindow`` (empty: nobody sets it, the default applies).
    window_owners: tuple[str, ...]
    #: The pinned version when one is governed (``autoUpgradeMinorVersion: false`` + version).
    version: str | None
    #: Paths policies disagree on: never judged, never written.
    conflict_paths: tuple[str, ...] = ()
    #: ``versionPolicy: promote``: the policy that moves the version (the highest-priority
    #: one that promotes) and its soak and gate; the version itself is chosen per cluster by
    #: ``fleet.plan.promotion`` and pinned with ``fleet.plan.promotion.pin``.
    promotion: PromotionRule | None = None

    @property
    def pinned(self) -> bool:
        return self.version is not None

    def owners_of(self, path: str) -> tuple[str, ...]:
        """Owners of ``path`` or of its nearest governed ancestor (all declarers if none)."""
        probe = path
        while probe:
            found = self.owners.get(probe)
            if found:
                return found
            probe = probe.rpartition("/")[0]
        return self.policies


@dataclass(frozen=True, slots=True)
class DesiredFluxConfig:
    """One merged flux configuration."""

    name: str
    resource: str
    #: The full desired ARM body ``{"properties": {...}}`` without secrets.
    body: Mapping[str, Any]
    essence: Mapping[str, Any]
    #: Protected settings: setting name -> ``SecretRef.describe()``.
    protected: Mapping[str, str]
    #: The policies that ask for exactly this body (the winner first).
    policies: tuple[str, ...]
    #: ``enforce`` when any of ``policies`` enforces, else ``audit``.
    mode: str
    conflict_paths: tuple[str, ...] = ()

    @property
    def owner(self) -> str:
        return self.policies[0]


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything the targeting policies want on one cluster.

    Bodies, essences and owner maps are shared with every other cluster that has the same
    policies (the render cache): read them, never mutate them. The plan and the findings hand
    out copies.
    """

    cluster_id: str
    #: Non-exempt targeting policies, sorted by name.
    policies: tuple[str, ...]
    #: Mode (``enforce``/``audit``) of every targeting policy, exempt ones included.
    modes: Mapping[str, str]
    #: Remediation flags of every non-exempt policy.
    flags: Mapping[str, RemediationFlags]
    exempt: tuple[ExemptPolicy, ...]
    extension: DesiredExtension | None
    #: By name, sorted.
    flux_configurations: Mapping[str, DesiredFluxConfig]
    #: Lower-cased names of the flux configurations any targeting policy declares (exempt and
    #: overridden ones included): anything else on the cluster is unmanaged.
    declared_names: frozenset[str]
    #: Policies that declare at least one flux configuration (non-exempt).
    flux_policies: tuple[str, ...]
    conflicts: tuple[Conflict, ...] = ()
    overrides: tuple[Override, ...] = ()
    #: The ``health`` limits of every non-exempt policy (fleet.evaluate.health).
    health: Mapping[str, FluxHealth] = field(default_factory=dict)

    def health_of(self, policy: str) -> FluxHealth:
        """The health limits of ``policy`` (the defaults when it is not known here)."""
        return self.health.get(policy, DEFAULT_HEALTH)

    @property
    def version_window(self) -> int:
        return self.extension.version_window if self.extension else DEFAULT_WINDOW

    @property
    def pinned(self) -> bool:
        return bool(self.extension and self.extension.pinned)

    def enforcing(self, policies: Sequence[str]) -> list[str]:
        """Those of ``policies`` in ``enforce`` mode (order kept)."""
        return [p for p in policies if self.modes.get(p) == "enforce"]

    @property
    def enforce(self) -> tuple[str, ...]:
        return tuple(p for p in self.policies if self.modes.get(p) == "enforce")

    @property
    def audit(self) -> tuple[str, ...]:
        return tuple(p for p in self.policies if self.modes.get(p) != "enforce")

"""The policy language (docs/contracts.md, Policy file, a contract): pydantic models of a
``FluxPolicy`` document.

Every model forbids unknown keys and is frozen (``fleet.policy.model_base``); secret references
are in ``fleet.policy.secret_refs``. Field names are the YAML names (camelCase);
inside ``extension`` and ``fluxConfigurations`` they are the ARM property names, so what a user
knows from ``az`` or an ARM template carries over. The attribute docstrings below are the
policy reference: ``fleet schema`` puts them in the JSON Schema and docs/policy-reference.md
is generated from them.

Checks that need more than one field (a pinned version with auto-upgrade on, dependsOn cycles)
live in ``fleet.policy.checks`` so that their errors can name the exact field path.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from fleet.core.ids import ClusterType
from fleet.policy import globs
from fleet.policy.health import FluxHealth
from fleet.policy.model_base import _Model
from fleet.policy.promotion import PromotionFields
from fleet.policy.secret_refs import (
    ENV_VAR_PATTERN,
    KV_SECRET_NAME_PATTERN,
    KV_VERSION_PATTERN,
    VAULT_NAME_PATTERN,
    SecretField,
)
from fleet.policy.sources import (
    GIT_URL_PATTERN,
    OCI_DIGEST_PATTERN,
    OCI_URL_PATTERN,
    AzureBlob,
    Bucket,
    GitRepository,
    OciRepository,
)
from fleet.policy.timing import AutoRemediation, Cron, Freeze, MaintenanceWindow

#: N-2: the newest extension release and the two before it comply (``versionWindow``).
DEFAULT_WINDOW = 2

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
RELEASE_TRAIN_PATTERN = r"^[A-Za-z][A-Za-z0-9-]*$"
VERSION_PATTERN = r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$"
DURATION_PATTERN = r"^P(T?\d+[HMS])+$"
PERCENT_PATTERN = r"^\s*\d+(\.\d+)?\s*%\s*$"

#: What each pattern means, in words: the loader says this instead of printing a regex.
PATTERN_HINTS: dict[str, str] = {
    NAME_PATTERN: "must be 1-63 lower-case letters, digits or '-', starting and ending with a "
    "letter or digit",
    K8S_NAME_PATTERN: "must be a Kubernetes name: lower-case letters, digits, '-' and '.', "
    "starting and ending with a letter or digit",
    ENV_VAR_PATTERN: "must be an environment variable name (letters, digits, '_')",
    RELEASE_TRAIN_PATTERN: "must be a release train name such as Stable or Preview",
    VERSION_PATTERN: "must be a version such as 1.17.3",
    GIT_URL_PATTERN: "must start with https://, http://, ssh:// or git@",
    OCI_URL_PATTERN: "must start with oci://",
    OCI_DIGEST_PATTERN: "must be an image digest such as sha256:<64 hex digits>",
    DURATION_PATTERN: "must be an ISO-8601 duration such as PT5M",
    PERCENT_PATTERN: "must be a percentage such as '5%'",
    VAULT_NAME_PATTERN: "must be a Key Vault name: letters, digits and single '-', starting "
    "with a letter",
    KV_SECRET_NAME_PATTERN: "must be a Key Vault secret name: 1-127 letters, digits or '-'",
    KV_VERSION_PATTERN: "must be a Key Vault version id (letters and digits)",
}

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
K8sName = Annotated[str, StringConstraints(pattern=K8S_NAME_PATTERN, max_length=253)]


def _valid_glob(value: str) -> str:
    globs.check(value)
    return value


Glob = Annotated[str, StringConstraints(min_length=1, max_length=260), AfterValidator(_valid_glob)]


# --- selection ---------------------------------------------------------------------------


class Selector(_Model):
    """Which clusters a policy (or exclusion, or wave) means.

    Every field that is given must match; the items of one list are alternatives (OR).
    Names, resource groups and tag values are shell-style globs (``*``, ``?``, ``[abc]``),
    matched case-insensitively as ARM does.
    """

    subscriptions: list[str] | None = None
    """Subscription ids; ``"*"`` means every subscription the credential can see."""
    resource_groups: list[Glob] | None = None
    """Resource group names or globs, e.g. ``rg-prod-*``."""
    cluster_types: list[ClusterType] | None = None
    """``managedClusters`` (AKS) and/or ``connectedClusters`` (Azure Arc)."""
    locations: list[str] | None = None
    """Azure regions, e.g. ``westeurope`` (case and spaces ignored)."""
    tags: dict[str, Glob] | None = None
    """Tags the cluster must carry; a value is a glob and ``"*"`` only requires the key."""
    names: list[Glob] | None = None
    """Cluster names or globs."""

    @field_validator("subscriptions", "resource_groups", "cluster_types", "locations", "names")
    @classmethod
    def _not_empty(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None and not value:
            raise ValueError("an empty list matches no cluster; leave the field out instead")
        return value

    @field_validator("subscriptions")
    @classmethod
    def _valid_subscriptions(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            if item != "*" and not re.fullmatch(r"[0-9A-Fa-f-]{1,64}", item):
                raise ValueError(f"{item!r} is not a subscription id (a GUID) or '*'")
        return value


class Exemption(_Model):
    """A targeted cluster reported as ``exempt`` instead of being judged, until it expires."""

    cluster: Glob
    """The cluster's full ARM id (or a glob over ids)."""
    reason: str = Field(min_length=1)
    """Why the cluster is exempt; required so that reports can say it."""
    expires_on: date | None = None
    """Last day (UTC) of the exemption; the cluster is judged again from the next day."""
    ticket: str | None = None
    """An optional change or ticket reference shown in reports."""

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an exemption needs a reason")
        return value


# --- the microsoft.flux extension --------------------------------------------------------


class ExtensionSpec(PromotionFields):  # versionPolicy, promotion: fleet.policy.promotion
    """The ``microsoft.flux`` cluster extension. Fields left out are not governed.

    Policies that target the same cluster merge their extension fields key by key, the
    higher ``priority`` winning; equal priorities with different values are a conflict.
    """

    # For editors: a pinned version requires autoUpgradeMinorVersion: false (fleet.policy.checks
    # enforces it at load time with a field-precise message).
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["version"], "properties": {"version": {"type": "string"}}},
            "then": {
                "required": ["autoUpgradeMinorVersion"],
                "properties": {"autoUpgradeMinorVersion": {"const": False}},
            },
        }
    )

    name: Name | None = None
    """Extension resource name; ``flux`` (the name Azure gives an auto-installed one) by default."""
    auto_upgrade_minor_version: bool | None = None
    """Let Azure upgrade the extension within its release train (ARM default: true)."""
    release_train: str | None = Field(default=None, pattern=RELEASE_TRAIN_PATTERN)
    """Release train followed when auto-upgrading, e.g. ``Stable`` (ARM default) or ``Preview``."""
    version: str | None = Field(default=None, pattern=VERSION_PATTERN)
    """Pinned extension version; only with ``autoUpgradeMinorVersion: false``."""
    configuration_settings: dict[str, str] | None = None
    """Extension settings (e.g. ``multiTenancy.enforce: "false"``); keys not named are not governed.

    Values are strings, as in ARM: quote ``"true"`` so YAML does not read a boolean.
    """
    configuration_protected_settings: dict[str, SecretField] | None = None
    """Protected settings, by reference only; compared by fingerprint of what fleet applied."""
    version_window: int | None = Field(default=None, ge=0, le=20)
    """How many releases before the newest still comply.

    2 means N-2, Microsoft's support window: the newest release and the two before it.
    """

    # A bool or number where ARM wants a string is refused by the ``str`` type itself (pydantic
    # does not coerce them), at the exact key; the loader adds the "quote it" hint. Coercing
    # would silently turn YAML's ``true`` into "True".


# --- Flux v2 configurations (ARM property names) -----------------------------------------


class SubstituteFrom(_Model):
    """A ConfigMap or Secret on the cluster whose data feeds post-build substitution."""

    kind: Literal["ConfigMap", "Secret"]
    """``ConfigMap`` or ``Secret``."""
    name: str
    """Name of the object, in the configuration's namespace."""
    optional: bool | None = None
    """Do not fail when the object is missing (ARM default false)."""


class PostBuild(_Model):
    """Flux post-build variable substitution for a kustomization."""

    substitute: dict[str, str] | None = None
    """Variables substituted as ``${name}`` in the built manifests."""
    substitute_from: list[SubstituteFrom] | None = None
    """ConfigMaps and Secrets to take variables from."""


class Kustomization(_Model):
    """One Flux Kustomization of a flux configuration (the map key is its name)."""

    path: str | None = None
    """Path in the source; ARM default ``""`` (the root)."""
    depends_on: list[str] | None = None
    """Names of kustomizations of the same configuration that must be ready first."""
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    """Timeout of one reconciliation (ARM default 600)."""
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    """Interval between reconciliations (ARM default 600)."""
    retry_interval_in_seconds: int | None = Field(default=None, ge=1)
    """Interval before retrying a failed reconciliation (no ARM default)."""
    prune: bool | None = None
    """Delete objects removed from the source (ARM default false)."""
    force: bool | None = None
    """Recreate objects whose immutable fields changed (ARM default false)."""
    wait: bool | None = None
    """Wait for the applied objects to become ready (ARM default true)."""
    post_build: PostBuild | None = None
    """Variable substitution after the kustomize build."""


class FluxConfigurationSpec(_Model):
    """A Flux v2 ``fluxConfigurations`` resource, by ARM property name.

    Flux configurations merge by ``name`` as whole objects; the ``kustomizations`` map is the
    complete desired set, so an extra kustomization on the cluster is drift.
    """

    # For editors: exactly one source (checked at load time by fleet.policy.checks).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["gitRepository"]},
                {"required": ["bucket"]},
                {"required": ["azureBlob"]},
                {"required": ["ociRepository"]},
            ]
        }
    )

    name: Name
    """Resource name of the flux configuration."""
    scope: Literal["cluster", "namespace"] | None = None
    """``cluster`` (ARM default) or ``namespace``; create-only in ARM."""
    namespace: K8sName | None = None
    """Namespace of the configuration's Flux objects (ARM default ``default``); create-only."""
    source_kind: Literal["GitRepository", "Bucket", "AzureBlob", "OCIRepository"] | None = None
    """Kind of source; inferred from which of gitRepository/bucket/azureBlob/ociRepository is
    given."""
    suspend: bool | None = None
    """Suspend reconciliation of this configuration (ARM default false)."""
    git_repository: GitRepository | None = None
    """Git source; exactly one of ``gitRepository``, ``bucket``, ``azureBlob`` and
    ``ociRepository`` is given."""
    bucket: Bucket | None = None
    """S3-compatible bucket source."""
    azure_blob: AzureBlob | None = None
    """Azure Blob container source."""
    oci_repository: OciRepository | None = None
    """OCI artifact source (API 2025-04-01)."""
    kustomizations: dict[Name, Kustomization] | None = None
    """Kustomizations by name: the complete desired set."""
    configuration_protected_settings: dict[str, SecretField] | None = None
    """Protected settings, by reference only.

    The keys are ARM's: ``sshPrivateKey``, ``httpsKey``, ``bucketSecretKey``.
    """
    wait_for_reconciliation: bool | None = None
    """Make the ARM PUT wait until Flux has reconciled (ARM default false)."""
    reconciliation_wait_duration: str | None = Field(default=None, pattern=DURATION_PATTERN)
    """How long the PUT waits for reconciliation, ISO-8601 (e.g. ``PT5M``)."""


# --- remediation -------------------------------------------------------------------------


class Wave(_Model):
    """One wave of a rollout: a selector, or a cumulative percentage of the targeted clusters.

    Clusters are assigned to the first wave that takes them; a percentage wave takes clusters
    by a stable hash of their id, so a re-run puts the same clusters in the same waves.
    """

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["selector"]}, {"required": ["percent"]}]}
    )

    name: Name
    """Name of the wave, shown in job progress and reports."""
    selector: Selector | None = None
    """Clusters of this wave (those not already taken by an earlier wave)."""
    percent: float | None = Field(default=None, ge=0, le=100)
    """Cumulative share (0..100) of all targeted clusters covered once this wave is done."""
    approval: bool = False
    """Wait for ``fleet jobs approve`` before starting this wave."""
    approvers: int = Field(default=1, ge=1, le=10)
    """Distinct people who must approve the wave before it starts (above 1, the wave waits for
    approval even without ``approval: true``); the job's creator never counts as one."""

    @model_validator(mode="after")
    def _one_kind(self) -> Wave:
        if (self.selector is None) == (self.percent is None):
            raise ValueError("a wave needs exactly one of selector and percent")
        return self


class Rollout(_Model):
    """How a remediation job moves through the fleet."""

    waves: list[Wave] | None = None
    """Ordered waves; by default one wave with every targeted cluster."""
    max_concurrency: int = Field(default=50, ge=1, le=10000)
    """Clusters written at once."""
    failure_budget: (
        Annotated[str, StringConstraints(pattern=PERCENT_PATTERN)] | Annotated[int, Field(ge=0)]
    ) = "5%"
    """Failures allowed before the job stops: a count (``3``) or a share (``"5%"``) of the job."""
    soak_seconds: int = Field(default=0, ge=0)
    """Pause after each wave before the next one starts."""

    @field_validator("failure_budget", mode="before")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        # Checked before the ``str | int`` union so that a wrong type gets one clear message
        # instead of one error per union member, and so that YAML's ``true`` is not a count.
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("expected a count (3) or a percentage ('5%')")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a failure budget count cannot be negative")
            return value
        match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*%\s*", value)
        if not match:
            raise ValueError(f"{value!r} is neither a count (3) nor a percentage ('5%')")
        if not 0 <= float(match.group(1)) <= 100:
            raise ValueError(f"percentage {value!r} is outside 0..100")
        return value

    # Duplicate wave names are reported by fleet.policy.checks, at the offending wave.


class Remediation(_Model):
    """What a remediation job may do for this policy, and when sweeps run."""

    schedule: Cron | None = None
    """Cron expression (UTC) of scheduled sweeps, e.g. ``0 */6 * * *``."""
    rollout: Rollout = Rollout()
    """Waves, concurrency and failure budget of remediation jobs."""
    delete_unmanaged: bool = False
    """Delete flux configurations that no policy declares on the clusters this policy targets."""
    migrate_flux_v1: bool = False
    """Delete Flux v1 sourceControlConfigurations that block the extension."""
    recreate_on_immutable_change: bool = False
    """Allow delete + create when a create-only field (scope, namespace) differs."""
    windows: list[MaintenanceWindow] = []
    """When remediation may write this policy's clusters (any one window); none: at any time."""
    freezes: list[Freeze] = []
    """Date ranges in which remediation never writes this policy's clusters."""
    respect_aks_maintenance: bool = False
    """Write an AKS cluster only inside its own planned maintenance window (docs/windows.md)."""
    auto: AutoRemediation | None = None
    """Continuous enforcement: a remediation after each scheduled sweep (docs/enforcement.md)."""


# --- the document ------------------------------------------------------------------------


class Metadata(_Model):
    """Identity of the policy."""

    name: Name
    """Unique name of the policy in the set: lower-case letters, digits and dashes."""
    description: str | None = None
    """What the policy is for; shown in reports."""
    labels: dict[str, str] | None = None
    """Free-form labels (owner, cost centre, ...); copied to reports, not used for selection."""


class PolicySpec(_Model):
    """What the policy requires, where, and how remediation may enforce it."""

    mode: Literal["audit", "enforce"] = "audit"
    """``audit`` only reports; ``enforce`` lets remediation jobs write."""
    priority: int = 0
    """Higher wins where policies overlap; equal priority with different values is a conflict."""
    targets: Selector = Selector()
    """Clusters this policy applies to (every given field must match)."""
    exclusions: list[Selector] = []
    """Clusters matching any of these are not targeted (exclusion always wins)."""
    exemptions: list[Exemption] = []
    """Targeted clusters reported as exempt until the exemption expires."""
    extension: ExtensionSpec | None = None
    """The microsoft.flux extension this policy requires."""
    flux_configurations: list[FluxConfigurationSpec] = []
    """Flux v2 configurations this policy requires."""
    remediation: Remediation = Remediation()
    """Schedule and rollout of remediation for this policy."""
    health: FluxHealth = FluxHealth()
    """How Flux's own status is judged: ``pendingFor``, ``staleAfter``, ``objects``."""


class Policy(_Model):
    """One ``FluxPolicy`` document."""

    api_version: Literal["fleet/v1"]
    """Version of the policy format: ``fleet/v1``."""
    kind: Literal["FluxPolicy"]
    """Kind of document: ``FluxPolicy``."""
    metadata: Metadata
    """Name, description and labels."""
    spec: PolicySpec
    """The policy itself."""

    @property
    def name(self) -> str:
        """The policy's unique name (``metadata.name``)."""
        return self.metadata.name

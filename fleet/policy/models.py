"""The policy language (DESIGN 3.1, a contract): pydantic models of a ``FluxPolicy`` document.

Every model forbids unknown keys and is frozen. Field names are the YAML names (camelCase);
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
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from fleet.core.ids import ClusterType
from fleet.policy import globs

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


Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
K8sName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", max_length=253)
]


def _valid_glob(value: str) -> str:
    globs.check(value)
    return value


Glob = Annotated[str, StringConstraints(min_length=1, max_length=260), AfterValidator(_valid_glob)]


# --- secrets -----------------------------------------------------------------------------


class SecretRef(_Model):
    """A reference to a secret value, resolved only at the moment of writing to ARM.

    Exactly one of ``fromEnv`` and ``fromFile``. The value is never logged, stored or shown;
    fleet stores a keyed fingerprint of what it applied, so a rotated secret shows as drift.
    """

    from_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of an environment variable holding the value."""
    from_file: str | None = Field(default=None, min_length=1)
    """Path of a file holding the value (trailing newline stripped); relative to the policy file."""

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.from_env is None) == (self.from_file is None):
            raise ValueError("give exactly one of fromEnv and fromFile")
        return self

    def describe(self) -> str:
        """A printable, secret-free description: ``env:GIT_TOKEN`` or ``file:/run/key``."""
        return f"env:{self.from_env}" if self.from_env else f"file:{self.from_file}"


def _reject_inline_secret(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        raise ValueError(
            "inline secrets are not allowed; reference the value with {fromEnv: VAR} or "
            "{fromFile: PATH}"
        )
    return value


SecretField = Annotated[
    SecretRef,
    BeforeValidator(_reject_inline_secret),
    Field(json_schema_extra={"x-fleet-secret": True}),
]


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


class ExtensionSpec(_Model):
    """The ``microsoft.flux`` cluster extension. Fields left out are not governed.

    Policies that target the same cluster merge their extension fields key by key, the
    higher ``priority`` winning; equal priorities with different values are a conflict.
    """

    name: Name | None = None
    """Extension resource name; ``flux`` (the name Azure gives an auto-installed one) by default."""
    auto_upgrade_minor_version: bool | None = None
    """Let Azure upgrade the extension within its release train (ARM default: true)."""
    release_train: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9-]*$")
    """Release train followed when auto-upgrading, e.g. ``Stable`` (ARM default) or ``Preview``."""
    version: str | None = Field(default=None, pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
    """Pinned extension version; only with ``autoUpgradeMinorVersion: false``."""
    configuration_settings: dict[str, str] | None = None
    """Extension settings (e.g. ``multiTenancy.enforce: "false"``); keys not named are not governed."""
    configuration_protected_settings: dict[str, SecretField] | None = None
    """Protected settings, by reference only; compared by fingerprint of what fleet applied."""
    version_window: int | None = Field(default=None, ge=0, le=20)
    """How many releases before the newest still comply: 2 means N-2 (Microsoft's support window)."""

    @field_validator("configuration_settings", mode="before")
    @classmethod
    def _settings_are_strings(cls, value: Any) -> Any:
        # ARM takes strings only; YAML turns `true` into a bool, which would silently become
        # "True". Refuse it so the user writes "true" and means it.
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(v, str):
                    raise ValueError(
                        f"value of {k!r} must be a string (quote it: {k}: \"{str(v).lower()}\")"
                    )
        return value


# --- Flux v2 configurations (ARM property names) -----------------------------------------


class RepositoryRef(_Model):
    """Which revision of the Git repository to sync (precedence commit > semver > tag > branch)."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    commit: str | None = None


class GitRepository(_Model):
    """A Git source (``sourceKind: GitRepository``)."""

    url: str = Field(pattern=r"^(https?|ssh)://|^git@")
    """Repository URL: ``https://``, ``http://``, ``ssh://`` or ``git@host:path``."""
    repository_ref: RepositoryRef | None = None
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    """ARM default 600."""
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    """ARM default 600."""
    ssh_known_hosts: str | None = None
    """Base64 known_hosts content for SSH sources."""
    https_user: str | None = None
    https_ca_cert: str | None = Field(default=None, alias="httpsCACert")
    """Base64 CA certificate for HTTPS sources."""
    local_auth_ref: str | None = None
    """Name of a local secret on the cluster holding the credentials."""


class Bucket(_Model):
    """An S3-compatible bucket source (``sourceKind: Bucket``)."""

    url: str
    bucket_name: str
    insecure: bool | None = None
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    access_key: str | None = None
    """Plain access key id (not a secret in the ARM model; the secret key is protected)."""
    local_auth_ref: str | None = None


class ServicePrincipal(_Model):
    """Service principal for an Azure Blob source; its secrets by reference only."""

    client_id: str | None = None
    tenant_id: str | None = None
    client_secret: SecretField | None = None
    client_certificate: SecretField | None = None
    client_certificate_password: SecretField | None = None
    client_certificate_send_chain: bool | None = None


class ManagedIdentity(_Model):
    client_id: str


class AzureBlob(_Model):
    """An Azure Blob container source (``sourceKind: AzureBlob``)."""

    url: str
    container_name: str
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    service_principal: ServicePrincipal | None = None
    account_key: SecretField | None = None
    sas_token: SecretField | None = None
    managed_identity: ManagedIdentity | None = None
    local_auth_ref: str | None = None


class SubstituteFrom(_Model):
    kind: Literal["ConfigMap", "Secret"]
    name: str
    optional: bool | None = None


class PostBuild(_Model):
    substitute: dict[str, str] | None = None
    substitute_from: list[SubstituteFrom] | None = None


class Kustomization(_Model):
    """One Flux Kustomization of a flux configuration (the map key is its name)."""

    path: str | None = None
    """Path in the source; ARM default ``""`` (the root)."""
    depends_on: list[str] | None = None
    """Names of kustomizations of the same configuration that must be ready first."""
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    retry_interval_in_seconds: int | None = Field(default=None, ge=1)
    prune: bool | None = None
    """Delete objects removed from the source (ARM default false)."""
    force: bool | None = None
    wait: bool | None = None
    """ARM default true."""
    post_build: PostBuild | None = None


class FluxConfigurationSpec(_Model):
    """A Flux v2 ``fluxConfigurations`` resource, by ARM property name.

    Flux configurations merge by ``name`` as whole objects; the ``kustomizations`` map is the
    complete desired set, so an extra kustomization on the cluster is drift.
    """

    name: Name
    """Resource name of the flux configuration."""
    scope: Literal["cluster", "namespace"] | None = None
    """``cluster`` (ARM default) or ``namespace``; create-only in ARM."""
    namespace: K8sName | None = None
    """Namespace of the configuration's Flux objects (ARM default ``default``); create-only."""
    source_kind: Literal["GitRepository", "Bucket", "AzureBlob"] | None = None
    """Kind of source; inferred from which of gitRepository/bucket/azureBlob is given."""
    suspend: bool | None = None
    git_repository: GitRepository | None = None
    bucket: Bucket | None = None
    azure_blob: AzureBlob | None = None
    kustomizations: dict[Name, Kustomization] | None = None
    """Kustomizations by name: the complete desired set."""
    configuration_protected_settings: dict[str, SecretField] | None = None
    """Protected settings (``sshPrivateKey``, ``httpsKey``, ``bucketSecretKey``...), by reference."""
    wait_for_reconciliation: bool | None = None
    reconciliation_wait_duration: str | None = Field(default=None, pattern=r"^P(T?\d+[HMS])+$")


# --- remediation -------------------------------------------------------------------------


class Wave(_Model):
    """One wave of a rollout: a selector, or a cumulative percentage of the targeted clusters.

    Clusters are assigned to the first wave that takes them; a percentage wave takes clusters
    by a stable hash of their id, so a re-run puts the same clusters in the same waves.
    """

    name: Name
    selector: Selector | None = None
    """Clusters of this wave (those not already taken by an earlier wave)."""
    percent: float | None = Field(default=None, ge=0, le=100)
    """Cumulative share (0..100) of all targeted clusters covered once this wave is done."""
    approval: bool = False
    """Wait for ``fleet jobs approve`` before starting this wave."""

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
    failure_budget: str | int = "5%"
    """Failures allowed before the job stops: a count (``3``) or a share (``"5%"``) of the job."""
    soak_seconds: int = Field(default=0, ge=0)
    """Pause after each wave before the next one starts."""

    @field_validator("failure_budget")
    @classmethod
    def _budget(cls, value: str | int) -> str | int:
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

    @field_validator("waves")
    @classmethod
    def _unique_waves(cls, value: list[Wave] | None) -> list[Wave] | None:
        names = [w.name for w in value or ()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate wave names: {', '.join(dupes)}")
        return value


class Remediation(_Model):
    """What a remediation job may do for this policy, and when sweeps run."""

    schedule: str | None = None
    """Cron expression (UTC) of scheduled sweeps, e.g. ``0 */6 * * *``."""
    rollout: Rollout = Rollout()
    delete_unmanaged: bool = False
    """Delete flux configurations that no policy declares on the clusters this policy targets."""
    migrate_flux_v1: bool = False
    """Delete Flux v1 sourceControlConfigurations that block the extension."""
    recreate_on_immutable_change: bool = False
    """Allow delete + create when a create-only field (scope, namespace) differs."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from croniter import croniter  # local: keeps the import cost off the hot path

            if not croniter.is_valid(value) or len(value.split()) != 5:
                raise ValueError(f"{value!r} is not a valid 5-field cron expression")
        return value


# --- the document ------------------------------------------------------------------------


class Metadata(_Model):
    name: Name
    """Unique name of the policy in the set: lower-case letters, digits and dashes."""
    description: str | None = None
    labels: dict[str, str] | None = None


class PolicySpec(_Model):
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


class Policy(_Model):
    """One ``FluxPolicy`` document."""

    api_version: Literal["fleet/v1"]
    kind: Literal["FluxPolicy"]
    metadata: Metadata
    spec: PolicySpec

    @property
    def name(self) -> str:
        return self.metadata.name

"""Source models of a flux configuration: Git, S3 bucket, Azure Blob and OCI repository.

Part of the policy language (``fleet.policy.models`` holds the rest): one model per source kind
of the ``fluxConfigurations`` API (2023-05-01 and 2025-04-01, ``tests/arm-spec``), field names
as ARM spells them, attribute docstrings as the policy reference. Secret fields
(``azureBlob.accountKey``, ``ociRepository.tlsConfig.privateKey``...) are ``SecretField``s: a
reference only, resolved at write time and compared by fingerprint (``fleet.desired.flux``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fleet.policy.model_base import _Model
from fleet.policy.secret_refs import SecretField

GIT_URL_PATTERN = r"^(https?|ssh)://|^git@"
OCI_URL_PATTERN = r"^oci://"
OCI_DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class RepositoryRef(_Model):
    """Which revision of the Git repository to sync (precedence commit > semver > tag > branch)."""

    branch: str | None = None
    """Branch to follow. The ``az`` CLI defaults to ``master``; say which branch you mean."""
    tag: str | None = None
    """Tag to sync; takes precedence over ``branch``."""
    semver: str | None = None
    """SemVer range of tags (e.g. ``>=1.0.0 <2.0.0``); takes precedence over ``tag``."""
    commit: str | None = None
    """Commit SHA to pin; ARM requires ``branch`` with it."""


class GitRepository(_Model):
    """A Git source (``sourceKind: GitRepository``)."""

    url: str = Field(pattern=GIT_URL_PATTERN)
    """Repository URL: ``https://``, ``http://``, ``ssh://`` or ``git@host:path``."""
    repository_ref: RepositoryRef | None = None
    """Which branch, tag, semver range or commit to sync."""
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    """Timeout of a source sync (ARM default 600)."""
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    """Interval between source syncs (ARM default 600)."""
    ssh_known_hosts: str | None = None
    """Base64 known_hosts content for SSH sources."""
    https_user: str | None = None
    """User name for HTTPS sources.

    The key itself goes in ``configurationProtectedSettings.httpsKey``, by reference.
    """
    https_ca_cert: str | None = Field(default=None, alias="httpsCACert")
    """Base64 CA certificate for HTTPS sources."""
    local_auth_ref: str | None = None
    """Name of a local secret on the cluster holding the credentials."""
    provider: Literal["Generic", "Azure", "GitHub"] | None = None
    """Who authenticates to the repository (API 2025-04-01): ``Generic`` (ARM's default: the
    secrets given here), ``Azure`` (Azure DevOps through the cluster's workload identity, no
    secret at all) or ``GitHub`` (a GitHub App)."""


class Bucket(_Model):
    """An S3-compatible bucket source (``sourceKind: Bucket``)."""

    url: str
    """Endpoint URL of the S3-compatible storage."""
    bucket_name: str
    """Name of the bucket."""
    insecure: bool | None = None
    """Use plain HTTP to the endpoint. ARM's default is true; fleet always sends false unless
    this says true, and judges a bucket without the field as TLS (docs/security.md)."""
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    """Timeout of a source sync (ARM default 600)."""
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    """Interval between source syncs (ARM default 600)."""
    access_key: str | None = None
    """Plain access key id (not a secret in the ARM model; the secret key is protected)."""
    local_auth_ref: str | None = None
    """Name of a local secret on the cluster holding the credentials."""


class ServicePrincipal(_Model):
    """Service principal for an Azure Blob source; its secrets by reference only."""

    client_id: str | None = None
    """Application (client) id of the service principal."""
    tenant_id: str | None = None
    """Tenant id of the service principal."""
    client_secret: SecretField | None = None
    """Client secret, by reference."""
    client_certificate: SecretField | None = None
    """Base64 client certificate, by reference."""
    client_certificate_password: SecretField | None = None
    """Password of the client certificate, by reference."""
    client_certificate_send_chain: bool | None = None
    """Send the certificate chain for subject-name/issuer authentication (ARM default false)."""


class ManagedIdentity(_Model):
    """A managed identity for an Azure Blob source (AKS only)."""

    client_id: str
    """Client id of the managed identity (it needs Storage Blob Data Reader)."""


class AzureBlob(_Model):
    """An Azure Blob container source (``sourceKind: AzureBlob``)."""

    url: str
    """URL of the storage account's blob endpoint."""
    container_name: str
    """Name of the blob container."""
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    """Timeout of a source sync (ARM default 600)."""
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    """Interval between source syncs (ARM default 600)."""
    service_principal: ServicePrincipal | None = None
    """Authenticate with a service principal."""
    account_key: SecretField | None = None
    """Storage account key, by reference."""
    sas_token: SecretField | None = None
    """Shared access signature token, by reference."""
    managed_identity: ManagedIdentity | None = None
    """Authenticate with a managed identity (AKS only)."""
    local_auth_ref: str | None = None
    """Name of a local secret on the cluster holding the credentials."""


# --- OCI repository (API 2025-04-01) ----------------------------------------------------------


class OciRepositoryRef(_Model):
    """Which artifact of the OCI repository to pull (precedence digest > semver > tag)."""

    tag: str | None = None
    """Image tag to pull; Flux pulls ``latest`` when no reference is given."""
    semver: str | None = None
    """SemVer range of tags (e.g. ``>=1.0.0 <2.0.0``); takes precedence over ``tag``."""
    digest: str | None = Field(default=None, pattern=OCI_DIGEST_PATTERN)
    """Image digest, ``sha256:...``; takes precedence over ``semver``."""


class LayerSelector(_Model):
    """Which layer of the OCI artifact to use (by default the first one, extracted)."""

    media_type: str | None = None
    """The first layer of this media type is used."""
    operation: Literal["extract", "copy"] | None = None
    """``extract`` (Flux's default) the layer's tarball, or ``copy`` it as it is."""


class MatchOidcIdentity(_Model):
    """An OIDC identity an artifact's keyless signature must match (regular expressions)."""

    issuer: str = Field(min_length=1)
    """Regular expression the OIDC issuer must match."""
    subject: str = Field(min_length=1)
    """Regular expression the identity subject must match."""


class Verify(_Model):
    """Verify the artifact's signature before Flux applies it."""

    provider: str = Field(min_length=1)
    """Verification provider, e.g. ``cosign`` or ``notation``."""
    match_oidc_identity: list[MatchOidcIdentity] | None = None
    """Identities accepted for keyless (OIDC) signatures; any one of them matches."""
    verification_config: dict[str, str] | None = None
    """Trusted public keys of the authors, by name (public keys, not secrets)."""


class TlsConfig(_Model):
    """Client TLS for the registry; every value is a secret, given by reference only."""

    client_certificate: SecretField | None = None
    """Base64 client certificate, by reference."""
    private_key: SecretField | None = None
    """Base64 private key of the client certificate, by reference."""
    ca_certificate: SecretField | None = None
    """Base64 CA certificate that verifies the registry, by reference."""


class OciRepository(_Model):
    """An OCI artifact source (``sourceKind: OCIRepository``, API 2025-04-01)."""

    url: str = Field(pattern=OCI_URL_PATTERN)
    """Repository URL, ``oci://registry/path``."""
    repository_ref: OciRepositoryRef | None = None
    """Which tag, semver range or digest to pull."""
    layer_selector: LayerSelector | None = None
    """Which layer of the artifact to use."""
    verify: Verify | None = None
    """Verify signatures (no verification when left out: ARM has no default)."""
    insecure: bool | None = None
    """Allow a registry over plain HTTP (ARM default false; fleet always sends false unless this
    says true)."""
    use_workload_identity: bool | None = None
    """Authenticate with the cluster's workload identity (ARM default false)."""
    service_account_name: str | None = None
    """Kubernetes service account whose credentials pull the artifact."""
    tls_config: TlsConfig | None = None
    """Client TLS for the registry, by reference."""
    timeout_in_seconds: int | None = Field(default=None, ge=1)
    """Timeout of a source sync (ARM default 600)."""
    sync_interval_in_seconds: int | None = Field(default=None, ge=1)
    """Interval between source syncs (ARM default 600)."""
    local_auth_ref: str | None = None
    """Name of a local secret on the cluster holding the credentials."""

"""Process settings (docs/contracts.md, Command line, a contract for the ``FLEET_*`` names).

One ``Settings`` object is built per process from the environment (prefix ``FLEET_``) and an
optional ``.env`` file, and passed explicitly to whatever needs it; nothing reads a global.
Each field's docstring says what it does and why its default was chosen; ``docs/settings.md``
is generated from them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

AuthMode = Literal["default", "cli", "workload", "secret", "managed", "emulator"]


def state_dir() -> Path:
    """Where fleet keeps its database and fingerprint key by default (XDG state dir)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fleet"


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is a loopback address or ``localhost``."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """fleet's process configuration. Every field reads ``FLEET_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="FLEET_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        use_attribute_docstrings=True,
        frozen=True,
    )

    # --- Azure Resource Manager ---------------------------------------------------------
    arm_endpoint: str = "https://management.azure.com"
    """ARM base URL. Point it at ``fleet emulator serve``'s endpoint to work offline."""
    arm_ca_bundle: str | None = None
    """CA bundle (PEM) to trust for the ARM endpoint; the emulator prints its own."""
    auth: AuthMode = "default"
    """How to get tokens: ``default`` (DefaultAzureCredential), ``cli`` (az login),
    ``workload`` (AKS workload identity), ``secret`` (AZURE_TENANT_ID/AZURE_CLIENT_ID/
    AZURE_CLIENT_SECRET), ``managed`` (managed identity), ``emulator`` (a fixed fake token,
    refused for endpoints that are not loopback)."""
    managed_identity_client_id: str | None = None
    """Client id of a user-assigned managed identity (``auth=managed``)."""
    subscriptions: Annotated[list[str] | None, NoDecode] = None
    """Limit every job to these subscription ids (comma-separated in the environment)."""
    principal_id: Annotated[list[str] | None, NoDecode] = None
    """Fleet's own principal as ARM's ``systemData.lastModifiedBy`` records it (comma-separated:
    the application's client id and its object id, or a user's UPN): a resource fleet manages
    that anyone else wrote last is ``FOREIGN_WRITER``. Unset: the ``oid``, ``appid``/``azp`` and
    ``upn`` claims of fleet's own ARM access token."""
    keyvault_url: str = "https://{vault}.vault.azure.net"
    """URL of a Key Vault for ``fromKeyVault`` references, ``{vault}`` standing for the vault's
    name: the public cloud's by default; ``https://{vault}.vault.azure.cn`` or
    ``https://{vault}.vault.usgovcloudapi.net`` for sovereign clouds, and the emulator's
    ``https://127.0.0.1:PORT/vaults/{vault}`` offline."""
    keyvault_ca_bundle: str | None = None
    """CA bundle (PEM) to trust for Key Vault; unset, the one trusted for ARM."""

    # --- concurrency and ARM's budget ----------------------------------------------------
    concurrency: int = Field(default=32, ge=1, le=1024)
    """Clusters read at once by the local engine; also the HTTP connection pool size. ARM's
    read bucket (25/s per subscription) is the real limit; 32 keeps it busy at ~1 s latency."""
    read_rate: float = Field(default=25.0, gt=0)
    """Reads per second per (subscription, principal): ARM's bucket refill rate."""
    read_burst: int = Field(default=250, ge=1)
    """Read bucket size per (subscription, principal): ARM's burst."""
    write_rate: float = Field(default=10.0, gt=0)
    """Writes per second per (subscription, principal)."""
    write_burst: int = Field(default=200, ge=1)
    """Write bucket size."""
    delete_rate: float = Field(default=10.0, gt=0)
    """Deletes per second per (subscription, principal)."""
    delete_burst: int = Field(default=200, ge=1)
    """Delete bucket size."""
    budget_fraction: float = Field(default=1.0, gt=0, le=1)
    """Share of ARM's buckets fleet may use (leave room for other tools on the same principal)."""
    sdk_retries: int = Field(default=2, ge=0, le=10)
    """Retries inside the Azure SDK per request. Kept low: fleet's own limiter handles 429s,
    so one request does not sleep through a throttling storm holding a connection."""
    read_attempts: int = Field(default=3, ge=1, le=20)
    """Attempts fleet makes for one read before the cluster gets a READ_ERROR."""
    request_timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for an ARM response before giving up on that attempt."""
    lro_poll_interval: float = Field(default=5.0, ge=0)
    """Seconds between polls of a long-running operation when ARM sends no Retry-After."""
    inventory: Literal["arm", "graph"] = "arm"
    """Where clusters and their configurations are read: per-cluster ARM reads (exact) or
    Azure Resource Graph (bulk, up to 1000 rows a query, may lag by minutes)."""
    facts_max_age: float = Field(default=900.0, ge=0)
    """Seconds a cluster's facts from its provider's list (power state, connectivity, agent
    pools) may be old when the cluster is judged; older, the cluster is read again first (one
    more read). 15 minutes: a sweep spends ARM's read bucket on 3 reads a cluster, ~8 clusters
    a second per subscription, so a subscription of up to ~7,000 clusters is judged on its
    listing; Resource Graph lags by minutes too. 0 reads every cluster again."""

    # --- stores --------------------------------------------------------------------------
    database_url: str = ""
    """SQLAlchemy URL of the history database; SQLite in the state directory by default.
    PostgreSQL: ``postgresql+psycopg://user@host/db``."""
    database_auto_upgrade: bool = True
    """Migrate the history database to this fleet's schema when a command, the demo or a worker
    opens it. On for one user on one machine; a deployment with many workers sets it to false
    and runs ``fleet db upgrade`` once per fleet upgrade, so that no process migrates behind the
    others' backs (an older schema is then refused with that advice)."""
    retention_days: int = Field(default=400, ge=1)
    """Sweeps older than this are deleted from history (a year and a bit, for yearly audits)."""
    broker_url: str = "redis://127.0.0.1:6379/0"
    """Celery broker (distributed mode only)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis for jobs, locks and the shared ARM budget (distributed mode only)."""
    visibility_timeout: int = Field(default=900, ge=10)
    """Seconds before Redis hands an unacknowledged task to another worker (a worker that died
    mid-task). Above the longest task: tasks are short (a batch of clusters; long ARM operations
    are split into start and poll tasks), so 15 minutes leaves a wide margin."""
    batch_size: int = Field(default=10, ge=1, le=1000)
    """Clusters per Celery task: bigger batches mean fewer messages, smaller ones spread better."""
    stall_seconds: float = Field(default=60.0, gt=0)
    """A distributed job that makes no progress for this long has its missing work sent again
    (a worker died holding tasks), instead of waiting for the visibility timeout."""
    metrics_port: int | None = None
    """Serve Prometheus metrics of a worker on this port (distributed mode)."""
    policy_paths: Annotated[list[str] | None, NoDecode] = None
    """Policy files/directories the beat reads for ``remediation.schedule`` (comma-separated);
    re-read every minute, so edits are picked up without restarting anything."""
    json_logs: bool = False
    """Log one JSON object per line (workers; for log collectors)."""
    state_dir: Path = Field(default_factory=state_dir)
    """Directory for the default SQLite database and the fingerprint key."""
    fingerprint_key: SecretStr | None = None
    """Key for the HMAC fingerprints of applied secrets; a random key is created in the state
    directory when unset. Every fleet process of one installation must share it."""

    # --- notifications (docs/notifications.md) -------------------------------------------
    notify_urls: SecretStr | None = None
    """Where notifications go: comma-separated entries ``[FORMAT=]TARGET``. FORMAT is
    ``cloudevents`` (the default), ``teams`` or ``slack``; TARGET is a secret reference
    (``env:NAME``, ``file:PATH``) or a literal ``https://`` URL. Webhook URLs carry their
    credential, so they are never logged, stored or shown; unset, nothing is sent."""
    notify_digest_threshold: int = Field(default=50, ge=1)
    """Above this many new (or fixed) findings a sweep sends one digest event with the counts
    and the first clusters instead of every finding: a chat channel cannot take 10,000 lines."""
    notify_compliance_drop: float = Field(default=5.0, ge=0)
    """Percentage points the fleet's compliance may fall between two complete sweeps of the
    same policies before a ``fleet.sweep.compliance_dropped`` event is sent."""
    notify_timeout: float = Field(default=5.0, gt=0)
    """Seconds one webhook POST may take (connect and answer) before it counts as failed."""
    notify_deliver_seconds: float = Field(default=15.0, ge=0)
    """Seconds a sweep or a job spends at its end delivering (and retrying) its events; what is
    still pending then is delivered by later runs, ``fleet notify send`` or the Celery beat."""
    notify_backoff_seconds: float = Field(default=2.0, gt=0)
    """First retry delay of a failed delivery; it doubles at each attempt (capped at an hour),
    with random jitter so that many pending events do not retry in step."""
    notify_max_attempts: int = Field(default=16, ge=1)
    """Attempts per event and webhook before it is given up (``failed`` in ``fleet notify
    status``); 16 attempts at the default backoff span four to five hours."""
    notify_schedule_grace: float = Field(default=900.0, ge=0)
    """Seconds after a ``remediation.schedule`` time by which its sweep must have started; the
    beat sends ``fleet.sweep.missed`` for a scheduled sweep that did not run by then."""

    # --- time ----------------------------------------------------------------------------
    clock: Literal["system", "emulator"] = "system"
    """Where jobs take "now" from for windows, freezes and schedules: the system clock, or
    ``emulator`` (the emulator's admin clock at ``FLEET_ARM_ENDPOINT``, which tests move;
    refused for endpoints that are not loopback)."""

    # --- safety rails --------------------------------------------------------------------
    max_clusters: int = Field(default=500, ge=1)
    """A remediation job refuses to write more clusters than this unless raised explicitly."""

    # --- the service (fleet serve) --------------------------------------------------------
    policies: Annotated[list[str] | None, NoDecode] = None
    """Policy files/directories (comma-separated) that sweeps and jobs started through the API
    use (``fleet serve --policies``)."""
    api_tenant_id: str | None = None
    """Entra ID tenant whose tokens the API accepts; the issuer and JWKS URL derive from it."""
    api_audience: Annotated[list[str] | None, NoDecode] = None
    """Accepted ``aud`` of API tokens: the API app's client id and/or Application ID URI
    (comma-separated)."""
    api_issuer: str | None = None
    """Accepted ``iss`` (default ``{authority}/{tenant}/v2.0``): tests, sovereign clouds."""
    api_jwks_url: str | None = None
    """Where the issuer's signing keys are (default ``{authority}/{tenant}/discovery/v2.0/keys``);
    https, or plain http on loopback only."""
    api_authority: str = "https://login.microsoftonline.com"
    """Entra ID authority host (another for sovereign clouds)."""
    api_client_id: str | None = None
    """Client id of the console's single-page app registration (MSAL in the browser)."""
    api_scopes: Annotated[list[str] | None, NoDecode] = None
    """Scopes the console asks tokens for (default ``{first audience}/.default``)."""
    api_clock_skew: int = Field(default=60, ge=0, le=600)
    """Seconds of clock skew tolerated on ``exp`` and ``nbf``."""
    api_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body the API reads (a saved plan is the biggest); larger ones get 413."""

    @field_validator(
        "subscriptions",
        "policy_paths",
        "policies",
        "api_audience",
        "api_scopes",
        "principal_id",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()] or None
        return value

    @field_validator("arm_endpoint")
    @classmethod
    def _https_only(cls, value: str) -> str:
        if urlsplit(value).scheme != "https":
            raise ValueError("the ARM endpoint must be https:// (the SDK refuses tokens over http)")
        return value.rstrip("/")

    @field_validator("keyvault_url")
    @classmethod
    def _vault_template(cls, value: str) -> str:
        if urlsplit(value).scheme != "https" or "{vault}" not in value:
            raise ValueError(
                "the Key Vault URL must be https:// and name the vault as {vault} "
                "(e.g. https://{vault}.vault.azure.net)"
            )
        return value.rstrip("/")

    @field_validator("api_jwks_url")
    @classmethod
    def _jwks_https(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme != "https" and not is_loopback_url(value):
            raise ValueError("the JWKS URL must be https:// (plain http only on loopback)")
        return value

    @model_validator(mode="after")
    def _emulator_auth_is_local(self) -> Settings:
        if self.auth == "emulator" and not is_loopback_url(self.arm_endpoint):
            raise ValueError(
                f"FLEET_AUTH=emulator sends a fake token and is refused for {self.arm_endpoint}: "
                "use it only with a loopback emulator endpoint"
            )
        if self.clock == "emulator" and not is_loopback_url(self.arm_endpoint):
            raise ValueError(
                f"FLEET_CLOCK=emulator reads the time of {self.arm_endpoint}: use it only with a "
                "loopback emulator endpoint"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the state directory."""
        return self.database_url or f"sqlite:///{self.state_dir / 'fleet.db'}"


def reference_markdown() -> str:
    """docs/settings.md: every setting, its variable, default and docstring (tests keep the
    committed file equal to this)."""
    lines = [
        "# Settings",
        "",
        "fleet reads its process settings from environment variables (prefix `FLEET_`) or a",
        "`.env` file in the working directory. Lists are comma-separated. Generated from",
        "`fleet/settings.py` by `python -m fleet.settings > docs/settings.md`.",
        "",
        "| variable | default | what it does |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=False)
        if field.default_factory is not None:
            shown = "`~/.local/state/fleet`" if name == "state_dir" else "(computed)"
        elif default in (None, ""):
            shown = "(unset)"
        else:
            shown = f"`{default}`"
        if name == "database_url":
            shown = "SQLite in the state directory"
        doc = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(f"| `FLEET_{name.upper()}` | {shown} | {doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")

"""Secret references of the policy language: ``fromEnv``, ``fromFile``, ``fromKeyVault``.

Policies never hold a secret value; the fields ARM marks secret take a ``SecretRef``
(``SecretField`` refuses an inline value without echoing it). ``fleet.apply.secrets`` resolves
references when a write needs them; ``SecretRef.describe()`` is the printable, secret-free form
that plans, jobs and fingerprints are keyed by.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from fleet.policy.model_base import _Model

ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
VAULT_NAME_PATTERN = r"^[A-Za-z](-?[A-Za-z0-9])*$"
KV_SECRET_NAME_PATTERN = r"^[A-Za-z0-9-]{1,127}$"
KV_VERSION_PATTERN = r"^[0-9A-Za-z]{1,64}$"


class KeyVaultSecret(_Model):
    """A secret in Azure Key Vault, read with fleet's own credential when it is written.

    fleet's principal needs the data-plane role "Key Vault Secrets User" on the vault. The
    vault's URL comes from its name (``https://{vault}.vault.azure.net``; ``FLEET_KEYVAULT_URL``
    changes it for sovereign clouds and the emulator).
    """

    vault: str = Field(min_length=3, max_length=24, pattern=VAULT_NAME_PATTERN)
    """The vault's name: the first label of its host name."""
    name: str = Field(pattern=KV_SECRET_NAME_PATTERN)
    """The secret's name in the vault."""
    version: str | None = Field(default=None, pattern=KV_VERSION_PATTERN)
    """A version id to pin. Left out, the vault's current version is used, and a newer version
    than the one fleet applied is reported as ``SECRET_ROTATION_PENDING`` (a remediation
    applies it in waves)."""


class SecretRef(_Model):
    """A reference to a secret value, resolved only at the moment of writing to ARM.

    Exactly one of ``fromEnv``, ``fromFile`` and ``fromKeyVault``. The value is never logged,
    stored or shown; fleet stores a keyed fingerprint of what it applied (and, for Key Vault,
    the version id), so a rotated secret shows as drift or as a pending rotation.
    """

    # The JSON Schema says what the validator below checks, so editors flag it too.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["fromEnv"]},
                {"required": ["fromFile"]},
                {"required": ["fromKeyVault"]},
            ]
        }
    )

    from_env: str | None = Field(default=None, pattern=ENV_VAR_PATTERN)
    """Name of an environment variable holding the value."""
    from_file: str | None = Field(default=None, min_length=1)
    """Path of a file holding the value (trailing newline stripped); relative to the policy file."""
    from_key_vault: KeyVaultSecret | None = None
    """A secret in Azure Key Vault (its current version unless one is pinned)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [v for v in (self.from_env, self.from_file, self.from_key_vault) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of fromEnv, fromFile and fromKeyVault")
        return self

    def describe(self) -> str:
        """A printable, secret-free description: ``env:GIT_TOKEN``, ``file:/run/key`` or
        ``keyvault:VAULT/NAME`` (``/VERSION`` when pinned)."""
        if self.from_env:
            return f"env:{self.from_env}"
        kv = self.from_key_vault
        if kv is not None:
            return f"keyvault:{kv.vault}/{kv.name}" + (f"/{kv.version}" if kv.version else "")
        return f"file:{self.from_file}"


def _reject_inline_secret(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        raise ValueError(
            "inline secrets are not allowed; reference the value with {fromEnv: VAR}, "
            "{fromFile: PATH} or {fromKeyVault: {vault: NAME, name: SECRET}}"
        )
    return value


SecretField = Annotated[
    SecretRef,
    BeforeValidator(_reject_inline_secret),
    Field(json_schema_extra={"x-fleet-secret": True}),
]

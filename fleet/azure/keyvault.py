"""Key Vault secrets for ``fromKeyVault`` references, read with fleet's own credential.

``Vaults(settings, credential).read(vault, name, version)`` returns the value and the version
id of a secret through ``azure-keyvault-secrets``. The vault's URL is ``FLEET_KEYVAULT_URL``
with the vault's name in place of ``{vault}`` (``https://{vault}.vault.azure.net`` in the
public cloud); the SDK's challenge-based authentication asks the credential for a token of the
scope the vault names in its ``WWW-Authenticate`` challenge, so one credential serves ARM and
every vault. fleet's principal needs the data-plane role "Key Vault Secrets User".

Failures become ``SecretUnavailable`` with a message that names the vault, the secret and what
to do, never a response body. Values are returned to the caller and kept nowhere here.

The emulator serves vaults under a path of its own loopback host (docs/emulator.md), where the
SDK's check that the challenge's resource is a parent domain of the vault's host cannot hold;
it is turned off for loopback vault URLs only.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient

from fleet.azure.transport import pooled_transport
from fleet.core.errors import SecretUnavailable
from fleet.settings import Settings, is_loopback_url

#: What fleet's principal needs on a vault to read its secrets (docs/security.md).
READER_ROLE = "Key Vault Secrets User"


class VaultSecret(NamedTuple):
    """A secret's value and the version id it was read at."""

    value: str
    version: str


class Vaults:
    """The vaults of one process: a ``SecretClient`` per vault, sharing one HTTP pool."""

    def __init__(self, settings: Settings, credential: TokenCredential) -> None:
        self.settings = settings
        self.credential = credential
        self._lock = threading.Lock()
        self._clients: dict[str, SecretClient] = {}
        self._http, self._transport = pooled_transport(
            settings,
            endpoint=settings.keyvault_url,
            ca_bundle=settings.keyvault_ca_bundle or settings.arm_ca_bundle,
            hosts=10,  # a pool per vault host
        )

    def url(self, vault: str) -> str:
        """The vault's URL (``FLEET_KEYVAULT_URL`` with the name filled in)."""
        return self.settings.keyvault_url.replace("{vault}", vault)

    def _client(self, vault: str) -> SecretClient:
        url = self.url(vault)
        if self.settings.auth == "emulator" and not is_loopback_url(url):
            # The emulator's fake token must never leave the machine.
            raise SecretUnavailable(
                f"Key Vault {vault}: FLEET_AUTH=emulator is refused for {url}; set "
                "FLEET_KEYVAULT_URL to the emulator's vault URL"
            )
        with self._lock:
            client = self._clients.get(vault.lower())
            if client is None:
                client = SecretClient(
                    url,
                    self.credential,
                    transport=self._transport,
                    verify_challenge_resource=not is_loopback_url(url),
                    retry_total=self.settings.sdk_retries,
                    logging_enable=False,
                )
                self._clients[vault.lower()] = client
            return client

    def read(self, vault: str, name: str, version: str | None = None) -> VaultSecret:
        """The secret's value at ``version`` (the current version when None)."""
        what = f"Key Vault secret {name}" + (f" version {version}" if version else "")
        where = f"in vault {vault}"
        try:
            secret = self._client(vault).get_secret(name, version)
        except ResourceNotFoundError:
            raise SecretUnavailable(f"{what} does not exist {where}") from None
        except ClientAuthenticationError as exc:
            raise SecretUnavailable(
                f"{what} {where}: the vault refused fleet's credential ({_code(exc)})"
            ) from None
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise SecretUnavailable(
                    f"{what} {where}: fleet's principal may not read it ({_code(exc)}); it "
                    f"needs the role {READER_ROLE!r} on the vault"
                ) from None
            raise SecretUnavailable(
                f"{what} {where}: HTTP {exc.status_code} {_code(exc)}"
            ) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise SecretUnavailable(
                f"{what} {where}: the vault at {self.url(vault)} cannot be reached "
                f"({type(exc).__name__})"
            ) from None
        value, found = secret.value, secret.properties.version
        if value is None or not found:
            raise SecretUnavailable(f"{what} {where}: the vault returned no value")
        return VaultSecret(value, found)

    def close(self) -> None:
        self._http.close()


def _code(exc: HttpResponseError) -> str:
    """The error code Key Vault sent (its message may quote the request, never a value)."""
    error = exc.error
    inner = getattr(error, "innererror", None) if error is not None else None
    code = (error.code if error is not None else None) or "no error code"
    if isinstance(inner, dict) and inner.get("code"):
        return f"{code}/{inner['code']}"
    return str(code)

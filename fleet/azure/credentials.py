"""Credentials: one per process, chosen by ``FLEET_AUTH``.

azure-identity caches tokens inside the credential instance, so fleet builds exactly one and
shares it with every client and thread of the process. ``emulator`` mode hands out a fixed fake
token and is only accepted for loopback endpoints (``Settings`` refuses it otherwise), so a
mis-set environment can never send a fake token to real Azure.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential

from fleet.settings import Settings, is_loopback_url


class EmulatorCredential:
    """Unsigned JWT-shaped tokens for the local emulator, one per scope.

    The emulator throttles per principal (the token's ``oid``), so tests can act as several
    principals by giving each a different ``principal``. The token's ``aud`` is the scope's
    resource (``https://vault.azure.net`` for the scope a Key Vault challenge names), so the
    emulator's Key Vault can refuse a token meant for ARM, as Key Vault does.
    """

    def __init__(self, principal: str = "fleet-emulator-principal") -> None:
        self.principal = principal
        self._tokens: dict[str, str] = {}

    def _token(self, audience: str) -> str:
        found = self._tokens.get(audience)
        if found is None:
            header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=")
            claims = {"oid": self.principal, "sub": self.principal, "tid": "emulator"}
            if audience:
                claims["aud"] = audience
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
            found = self._tokens[audience] = f"{header.decode()}.{body.decode()}."
        return found

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        audience = scopes[0].removesuffix("/.default") if scopes else ""
        return AccessToken(self._token(audience), int(time.time()) + 3600)


def make_credential(settings: Settings) -> TokenCredential:
    """Build the credential ``settings.auth`` asks for."""
    mode = settings.auth
    if mode == "emulator":
        if not is_loopback_url(settings.arm_endpoint):  # also checked by Settings; be sure
            raise ValueError("emulator credentials are only for a loopback ARM endpoint")
        return EmulatorCredential()
    # Imported lazily: azure.identity pulls in msal, which costs start-up time the emulator
    # path never needs.
    from azure import identity

    if mode == "cli":
        return identity.AzureCliCredential()
    if mode == "workload":
        return identity.WorkloadIdentityCredential()
    if mode == "secret":
        return identity.EnvironmentCredential()
    if mode == "managed":
        if settings.managed_identity_client_id:
            return identity.ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
        return identity.ManagedIdentityCredential()
    return identity.DefaultAzureCredential()


def _claims(credential: TokenCredential, scope: str) -> dict[str, Any]:
    """The unverified claims of the credential's token ({} when it is not a JWT)."""
    token = credential.get_token(scope).token
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def principal_of(credential: TokenCredential, scope: str) -> str:
    """The principal id (``oid``) in the credential's token, for per-principal budgets.

    Only the unverified claims are read, for bookkeeping: never for an authorization decision.
    """
    explicit = getattr(credential, "principal", None)
    if isinstance(explicit, str):
        return explicit
    claims = _claims(credential, scope)
    return str(claims.get("oid") or claims.get("sub") or "unknown")


def identities_of(credential: TokenCredential, scope: str) -> frozenset[str]:
    """Every name ARM may record fleet's own writes under in ``systemData.lastModifiedBy``:
    the token's ``oid`` (managed identities, the emulator), ``appid``/``azp`` (ARM records an
    application's client id) and ``upn``/``unique_name`` (``az login`` as a user).

    Fleet decodes the token it obtained itself, to recognise its own writes (attribution);
    this is not a validation and never an authorization decision.
    """
    explicit = getattr(credential, "principal", None)
    if isinstance(explicit, str):
        return frozenset({explicit})
    claims = _claims(credential, scope)
    names = (claims.get(k) for k in ("oid", "appid", "azp", "upn", "unique_name"))
    return frozenset(n for n in names if isinstance(n, str) and n)

"""Bearer tokens of Microsoft Entra ID, validated for real (docs/contracts.md, Service).

A token is accepted only when all of this holds: it is a well-formed JWS, its header says
``RS256`` (``none``, ``HS256`` and every other algorithm are refused before any key is looked
at, so a public key can never be used as an HMAC secret), its ``kid`` names a key of the
issuer's JWKS, the signature verifies with that key, ``iss`` is the configured issuer, ``aud``
one of the configured audiences, ``exp`` and ``nbf`` are present and hold within a small clock
skew, and ``oid`` names the caller. Anything else is ``InvalidToken`` with a reason that is
safe to log: the token itself is never logged nor echoed.

The JWKS is cached: an unknown ``kid`` (the issuer rotated its keys) refreshes it once, but not
more often than every ``MIN_REFRESH_SECONDS``, so a flood of tokens with made-up ``kid`` values
cannot turn the service into a client hammering the issuer; keys are also refreshed after
``MAX_AGE_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from fleet.service.auth import BadClaims, Caller, caller_of
from fleet.settings import Settings, is_loopback_url

log = logging.getLogger(__name__)

#: The one signature algorithm accepted (what Entra ID signs access tokens with).
ALGORITHM = "RS256"
#: Tokens longer than this are refused unread (Entra tokens are a few KB).
MAX_TOKEN_BYTES = 16_384
MIN_REFRESH_SECONDS = 30.0
MAX_AGE_SECONDS = 24 * 3600.0
FETCH_TIMEOUT = 5.0


class InvalidToken(Exception):
    """A token that is refused; ``str()`` is a reason safe to log and to answer with."""


class IssuerNotConfigured(ValueError):
    """The service has neither a tenant nor an explicit issuer, JWKS URL and audience."""


@dataclass(frozen=True)
class Issuer:
    """What a token must match: issuer, audiences, where the keys are, the skew allowed."""

    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str
    skew: int = 60

    @classmethod
    def of(cls, settings: Settings) -> Issuer:
        authority = settings.api_authority.rstrip("/")
        tenant = settings.api_tenant_id
        issuer = settings.api_issuer or (f"{authority}/{tenant}/v2.0" if tenant else None)
        jwks = settings.api_jwks_url or (
            f"{authority}/{tenant}/discovery/v2.0/keys" if tenant else None
        )
        audiences = tuple(settings.api_audience or ())
        missing = [
            name
            for name, value in (
                ("FLEET_API_TENANT_ID or FLEET_API_ISSUER", issuer),
                ("FLEET_API_TENANT_ID or FLEET_API_JWKS_URL", jwks),
                ("FLEET_API_AUDIENCE", audiences),
            )
            if not value
        ]
        if missing or issuer is None or jwks is None:
            raise IssuerNotConfigured(
                "the API needs an issuer to trust: set " + ", ".join(dict.fromkeys(missing))
            )
        return cls(issuer, audiences, jwks, settings.api_clock_skew)


def _fetch(url: str) -> dict[str, Any]:
    if not url.startswith("https://") and not is_loopback_url(url):
        raise InvalidToken("the JWKS URL is neither https nor loopback")
    response = requests.get(url, timeout=FETCH_TIMEOUT)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError("the JWKS is not a JSON object")
    return data


class Jwks:
    """The issuer's signing keys by ``kid`` (RSA signature keys only), cached."""

    def __init__(
        self,
        url: str,
        *,
        fetch: Callable[[str], dict[str, Any]] = _fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch, self._clock = fetch, clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        #: How many times the JWKS was fetched (tests, metrics).
        self.fetches = 0

    def _refresh(self) -> None:
        self._fetched_at = self._clock()
        self.fetches += 1
        try:
            data = self._fetch(self.url)
        except InvalidToken:
            raise
        except Exception as exc:
            log.warning("the issuer's keys could not be fetched: %s", exc)
            return  # keep the keys we had
        keys: dict[str, Any] = {}
        for entry in data.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA":
                continue
            if entry.get("use") not in (None, "sig") or not entry.get("kid"):
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry, algorithm=ALGORITHM).key
            except jwt.PyJWTError as exc:
                log.warning("skipping an unusable key of the JWKS: %s", exc)
        self._keys = keys

    def key(self, kid: str) -> Any:
        """The public key ``kid`` names; ``InvalidToken`` when the issuer has no such key."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= MAX_AGE_SECONDS
            if stale or (
                kid not in self._keys
                and self._fetched_at is not None
                and now - self._fetched_at >= MIN_REFRESH_SECONDS
            ):
                self._refresh()
            found = self._keys.get(kid)
        if found is None:
            raise InvalidToken("the token is signed with a key the issuer does not publish")
        return found


class TokenValidator:
    """Turns a bearer token into a ``Caller``, or refuses it (``InvalidToken``)."""

    def __init__(self, issuer: Issuer, jwks: Jwks | None = None) -> None:
        self.issuer = issuer
        self.jwks = jwks or Jwks(issuer.jwks_url)

    def validate(self, token: str) -> Caller:
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("the token is empty or too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is malformed") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise InvalidToken(f"the token's algorithm {str(alg)[:16]!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token names no signing key (kid)")
        key = self.jwks.key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=list(self.issuer.audiences),
                issuer=self.issuer.issuer,
                leeway=self.issuer.skew,
                options={"require": ["exp", "nbf", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token is from another issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token has no {exc.claim} claim") from None
        except jwt.PyJWTError:
            raise InvalidToken("the token is malformed") from None
        try:
            return caller_of(claims)
        except BadClaims as exc:
            raise InvalidToken(str(exc)) from None

"""The dev issuer of ``fleet serve --dev``: tokens for the local demo, on loopback only.

It stands in for Entra ID on one machine: an RSA key made at start (in memory, gone when the
server stops), its JWKS, and a token endpoint that signs an RS256 access token for one of a
few demo users, each with the roles its name says (two approvers, so separation of duties can
be tried). Its tokens go through the very validation real ones do (``fleet.service.tokens``):
only the issuer, audience and keys differ. The server refuses ``--dev`` unless it listens on
loopback, so nobody beyond this machine can mint a token.

    POST /dev/token {"user": "approver"}   ->  {"access_token": "...", "token_type": "Bearer"}
    GET  /dev/jwks.json                    ->  the public key
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter
from jwt.algorithms import RSAAlgorithm
from pydantic import BaseModel, ConfigDict, Field

from fleet.service.auth import Role
from fleet.service.errors import not_found

AUDIENCE = "api://fleet-dev"
LIFETIME_SECONDS = 3600

#: The demo users: name -> (oid, display name, roles).
USERS: dict[str, tuple[str, str, tuple[Role, ...]]] = {
    "viewer": ("00000000-0000-0000-0000-00000000d001", "Dana Viewer", (Role.VIEWER,)),
    "operator": ("00000000-0000-0000-0000-00000000d002", "Omar Operator", (Role.OPERATOR,)),
    "approver": ("00000000-0000-0000-0000-00000000d003", "Ada Approver", (Role.APPROVER,)),
    "approver2": ("00000000-0000-0000-0000-00000000d004", "Ben Approver", (Role.APPROVER,)),
    "admin": ("00000000-0000-0000-0000-00000000d005", "Ari Admin", (Role.ADMIN,)),
}


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(max_length=32)


class DevIssuer:
    """A signing key, its JWKS and a token endpoint for the demo users."""

    def __init__(self, url: str) -> None:
        self.issuer = url.rstrip("/") + "/dev"
        self.kid = uuid.uuid4().hex[:16]
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, user: str) -> str:
        if user not in USERS:
            raise not_found(f"no demo user {user!r} (users: {', '.join(USERS)})")
        oid, name, roles = USERS[user]
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "oid": oid,
            "sub": oid,
            "name": name,
            "roles": [r.value for r in roles],
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME_SECONDS,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    @staticmethod
    def users() -> list[dict[str, Any]]:
        """The demo users the console offers."""
        return [
            {"user": k, "name": v[1], "roles": [r.value for r in v[2]]} for k, v in USERS.items()
        ]

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/dev", tags=["dev issuer (fleet serve --dev)"])

        @router.get("/jwks.json")
        def jwks() -> dict[str, Any]:
            return self.jwks()

        @router.post("/token")
        def token(body: TokenBody) -> dict[str, Any]:
            return {
                "access_token": self.token(body.user),
                "token_type": "Bearer",
                "expires_in": LIFETIME_SECONDS,
            }

        return router

"""A token issuer of the tests' own: RSA keys, a JWKS served over HTTP on loopback, and tokens
minted the way Entra ID mints them, or broken in every way a hostile caller might try."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AUDIENCE = "api://fleet-tests"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalIssuer:
    """Signs tokens; publishes its current keys at ``jwks_url`` (rotate with ``add_key``)."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = self.add_key()
        #: A key the JWKS never publishes (a token signed by someone else).
        self.stranger = _key()
        self.requests = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.issuer = f"{self.url}/tenant/v2.0"
        self.jwks_url = f"{self.url}/keys"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def add_key(self) -> str:
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = _key()
        return kid

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": kid, "use": "sig"}
                for kid, k in self.keys.items()
            ]
        }

    def public_pem(self) -> bytes:
        return (
            self.keys[self.kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def claims(self, oid: str, roles: list[str], **more: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "oid": oid,
            "sub": oid,
            "tid": "tenant",
            "name": f"User {oid}",
            "roles": roles,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        claims.update(more)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        oid: str,
        roles: list[str],
        *,
        key: Any = None,
        kid: str | None = None,
        alg: str = "RS256",
        **claims: Any,
    ) -> str:
        kid = kid or self.kid
        return jwt.encode(
            self.claims(oid, roles, **claims),
            key if key is not None else self.keys[kid],
            algorithm=alg,
            headers={"kid": kid},
        )

    def close(self) -> None:
        self._server.shutdown()

"""Every bad token gets 401 and is logged without the token; a good one names its caller; the
issuer's keys are cached and refreshed once when a token names a new key."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import pytest

from fleet.service.tokens import MIN_REFRESH_SECONDS, InvalidToken, Issuer, Jwks, TokenValidator
from tests.service.conftest import VIEWER, Served
from tests.service.issuer import AUDIENCE, LocalIssuer


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(issuer: LocalIssuer) -> dict[str, tuple[str, str]]:
    """name -> (token, the reason the API gives)."""
    now = int(time.time())
    claims = issuer.claims("oid-mallory", [VIEWER])
    return {
        "expired": (
            issuer.token("oid-mallory", [VIEWER], exp=now - 3600, nbf=now - 7200),
            "expired",
        ),
        "not yet valid": (
            issuer.token("oid-mallory", [VIEWER], nbf=now + 3600, exp=now + 7200),
            "not valid yet",
        ),
        "other audience": (
            issuer.token("oid-mallory", [VIEWER], aud="api://someone-else"),
            "another audience",
        ),
        "other issuer": (
            issuer.token("oid-mallory", [VIEWER], iss="https://login.example/evil/v2.0"),
            "another issuer",
        ),
        "other key": (issuer.token("oid-mallory", [VIEWER], key=issuer.stranger), "signature"),
        "unknown kid": (
            issuer.token("oid-mallory", [VIEWER], key=issuer.stranger, kid="not-published"),
            "key the issuer does not publish",
        ),
        "alg none": (
            f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': issuer.kid})}.{_b64(claims)}.",
            "algorithm 'none'",
        ),
        "HS256 with the public key": (
            _hs256(claims, issuer.public_pem(), issuer.kid),
            "algorithm 'HS256'",
        ),
        "malformed": ("not.a.token", "malformed"),
        "garbage": ("%%%%", "malformed"),
        "no exp": (issuer.token("oid-mallory", [VIEWER], exp=None), "no exp claim"),
        "no oid": (issuer.token(None, [VIEWER]), "no oid"),  # type: ignore[arg-type]
        "huge": ("a" * 20000, "too large"),
    }


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """HS256 signed with the issuer's public key as the secret (PyJWT refuses to make one)."""
    import hashlib
    import hmac

    head = _b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    body = _b64(claims)
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_every_bad_token_is_refused_and_never_logged(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fleet.service.auth")
    for name, (token, reason) in bad_tokens(served.issuer).items():
        answer = served.call("GET", "/api/v1/sweeps", token=token)
        assert answer.status_code == 401, (name, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "unauthorized" and reason in error["message"], (name, error)
        assert answer.headers["www-authenticate"].startswith("Bearer"), name
        assert token not in answer.text, name
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged.count("refused a token") >= len(bad_tokens(served.issuer))
    for name, (token, _) in bad_tokens(served.issuer).items():
        if len(token) > 8:
            assert token not in logged and token.split(".")[0] + "." not in logged, name


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"], ids=repr
)
def test_no_bearer_token_is_401(served: Served, header: str) -> None:
    answer = served.call("GET", "/api/v1/me", headers={"Authorization": header} if header else {})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


def test_a_good_token_names_its_caller_and_roles(served: Served) -> None:
    token = served.issuer.token("oid-ok", ["Fleet.Operator", "Unknown.Role"], name="Oda Ok")
    me = served.call("GET", "/api/v1/me", token=token).json()
    assert me["oid"] == "oid-ok" and me["name"] == "Oda Ok"
    assert me["roles"] == ["Fleet.Operator"]
    assert me["permissions"] == {"read": True, "operate": True, "approve": False, "admin": False}


def test_clock_skew_is_small_but_tolerated(served: Served) -> None:
    now = int(time.time())
    recent = served.issuer.token("oid-skew", [VIEWER], exp=now - 20, nbf=now - 3600)
    assert served.call("GET", "/api/v1/me", token=recent).status_code == 200
    early = served.issuer.token("oid-skew", [VIEWER], nbf=now + 20)
    assert served.call("GET", "/api/v1/me", token=early).status_code == 200
    late = served.issuer.token("oid-skew", [VIEWER], exp=now - 120, nbf=now - 3600)
    assert served.call("GET", "/api/v1/me", token=late).status_code == 401


def test_keys_are_cached_and_refreshed_once_for_a_new_kid() -> None:
    issuer = LocalIssuer()
    clock = [1000.0]
    try:
        jwks = Jwks(issuer.jwks_url, clock=lambda: clock[0])
        validator = TokenValidator(Issuer(issuer.issuer, (AUDIENCE,), issuer.jwks_url), jwks)
        for _ in range(3):
            validator.validate(issuer.token("oid-a", [VIEWER]))
        assert jwks.fetches == 1
        rotated = issuer.add_key()  # the issuer rotates: a token names a key not seen yet
        clock[0] += MIN_REFRESH_SECONDS
        validator.validate(issuer.token("oid-a", [VIEWER], kid=rotated))
        assert jwks.fetches == 2
        # made-up kids do not make the service hammer the issuer
        for i in range(5):
            with pytest.raises(InvalidToken, match="does not publish"):
                validator.validate(
                    issuer.token("oid-a", [VIEWER], key=issuer.stranger, kid=f"made-up-{i}")
                )
        assert jwks.fetches == 2
    finally:
        issuer.close()

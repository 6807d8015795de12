"""What every response carries, and how much of a request is read: security headers, a strict
Content-Security-Policy, no caching of API answers, and a bound on request bodies.

The CSP lets the console run only its own scripts and styles (no inline code, no ``eval``, no
CDN: MSAL is vendored), talk only to this server and the Entra ID authority (MSAL's token
calls, the dev issuer on loopback in ``--dev``), frame nothing but the authority (MSAL's silent
renewal) and be framed by nobody. Bodies larger than ``FLEET_API_MAX_BODY_BYTES`` are refused
with 413: by their ``Content-Length`` before they are read, or once a streamed body passes the
bound.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def content_security_policy(connect: Sequence[str], frames: Sequence[str]) -> str:
    sources = " ".join(["'self'", *connect])
    framed = " ".join(frames) or "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src {sources}",
            f"frame-src {framed}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )


def security_headers(csp: str) -> list[tuple[bytes, bytes]]:
    pairs = {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "strict-transport-security": "max-age=31536000; includeSubDomains",
    }
    return [(k.encode(), v.encode()) for k, v in pairs.items()]


class TooLarge(HTTPException):
    """A streamed body passed the bound. An HTTP exception, so that FastAPI, which reads the
    body, lets it through to the error handlers (``fleet.service.errors``) as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit} bytes")


async def _refuse(send: Send, limit: int) -> None:
    payload = json.dumps(
        {"error": {"code": "too-large", "message": f"the request body is over {limit} bytes"}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class Guard:
    """ASGI middleware: security headers on every response, bounded request bodies."""

    def __init__(self, app: ASGIApp, *, csp: str, max_body: int) -> None:
        self.app, self.max_body = app, max_body
        self.headers = security_headers(csp)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        api = str(scope.get("path", "")).startswith(("/api/", "/metrics", "/readyz"))
        started = False
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(limit)
            return message

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                headers += self.headers
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, bounded, with_headers)
        except TooLarge:
            if not started:
                await _refuse(send, limit)


_OURS = frozenset(k for k, _ in security_headers("")) | {b"cache-control"}

"""The service's state and the dependencies every route takes: who calls, and may they.

``Service`` is what the app holds for its lifetime (settings, the token validator, the history
database, the engine, the console's sign-in configuration). ``caller`` reads the bearer token
of a request: no token, or one that ``TokenValidator`` refuses, is a 401 whose reason is logged
with the client's address and the path, never the token. ``Viewer``, ``Operator``, ``Approver``
and ``Admin`` are the role checks routes declare (403 without the role).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from fleet.record.history import History
from fleet.service.engine import Engine
from fleet.service.errors import forbidden, unauthorized
from fleet.service.identity import Caller, Role
from fleet.service.tokens import InvalidToken, TokenValidator
from fleet.settings import Settings

log = logging.getLogger("fleet.service.auth")


@dataclass
class Service:
    """What the app works with while it runs."""

    settings: Settings
    validator: TokenValidator
    history: History
    engine: Engine
    #: The console's sign-in: MSAL's configuration, or the dev issuer's (``--dev``).
    console: dict[str, Any] = field(default_factory=dict)


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


def caller(request: Request) -> Caller:
    """The caller of a request with a valid bearer token (401 otherwise)."""
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    where = request.client.host if request.client else "?"
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    try:
        return service(request).validator.validate(token.strip())
    except InvalidToken as exc:
        log.warning(
            "refused a token from %s for %s %s: %s", where, request.method, request.url.path, exc
        )
        raise unauthorized(str(exc)) from None


def needs(role: Role) -> Any:
    """A dependency: the caller, when it has ``role`` (403 otherwise)."""

    def check(found: Annotated[Caller, Depends(caller)]) -> Caller:
        if not found.has(role):
            raise forbidden(f"this needs the {role.value} role")
        return found

    return check


Viewer = Annotated[Caller, Depends(needs(Role.VIEWER))]
Operator = Annotated[Caller, Depends(needs(Role.OPERATOR))]
Approver = Annotated[Caller, Depends(needs(Role.APPROVER))]
Admin = Annotated[Caller, Depends(needs(Role.ADMIN))]
Anyone = Annotated[Caller, Depends(caller)]
State = Annotated[Service, Depends(service)]

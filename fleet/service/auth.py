"""Who calls the API and what they may do: the caller of a validated token, its roles, and the
dependencies every route takes.

A caller is the token's ``oid`` (the Entra ID object id: stable, unlike a name or an e-mail
address), shown by its ``name`` (else ``preferred_username``, else the ``oid``). Its roles are
the app roles of the ``roles`` claim:

- ``Fleet.Viewer``: read sweeps, reports, jobs, the kill switch, the audit trail, metrics;
- ``Fleet.Operator``: start sweeps, plans and remediation jobs; cancel and resume jobs;
- ``Fleet.Approver``: approve a job's waves (never a job it created);
- ``Fleet.Admin``: all of the above, and the kill switch.

Every Fleet role can read (someone who may act on a job may see it); only Admin implies the
others. Roles that fleet does not know are ignored.

``Service`` is what the app holds for its lifetime (settings, the token validator, the history
database, the engine, the console's sign-in configuration). ``caller`` reads the bearer token
of a request: no token, or one that ``TokenValidator`` refuses, is a 401 whose reason is logged
with the client's address and the path, never the token. ``Viewer``, ``Operator``, ``Approver``
and ``Admin`` are the role checks routes declare (403 without the role).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from fleet.core.duties import Actor
from fleet.record.history import History
from fleet.service.errors import forbidden, unauthorized
from fleet.settings import Settings

if TYPE_CHECKING:  # the engine and the validator import this module's types
    from fleet.service.engine import Engine
    from fleet.service.tokens import TokenValidator

log = logging.getLogger("fleet.service.auth")


class Role(StrEnum):
    VIEWER = "Fleet.Viewer"
    OPERATOR = "Fleet.Operator"
    APPROVER = "Fleet.Approver"
    ADMIN = "Fleet.Admin"


class BadClaims(ValueError):
    """The token is valid but does not say who the caller is (no ``oid``)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The person (or application) behind a validated token."""

    oid: str
    name: str
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        if Role.ADMIN in self.roles or role in self.roles:
            return True
        return role is Role.VIEWER and bool(self.roles)

    @property
    def actor(self) -> Actor:
        """The caller as the audit trail and the approval rules know it."""
        return Actor(self.name, self.oid, "api")

    def permissions(self) -> dict[str, bool]:
        """What the console may offer this caller (the API checks again on every call)."""
        return {
            "read": self.has(Role.VIEWER),
            "operate": self.has(Role.OPERATOR),
            "approve": self.has(Role.APPROVER),
            "admin": self.has(Role.ADMIN),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "oid": self.oid,
            "name": self.name,
            "roles": sorted(r.value for r in self.roles),
            "permissions": self.permissions(),
        }


def caller_of(claims: Mapping[str, Any]) -> Caller:
    """The caller a token's claims name; ``BadClaims`` without an ``oid``."""
    oid = claims.get("oid")
    if not isinstance(oid, str) or not oid.strip():
        raise BadClaims("the token has no oid claim")
    name = next(
        (
            str(claims[c]).strip()
            for c in ("name", "preferred_username")
            if isinstance(claims.get(c), str) and str(claims[c]).strip()
        ),
        oid,
    )
    raw = claims.get("roles")
    values = raw if isinstance(raw, list) else []
    known = {r.value: r for r in Role}
    roles = frozenset(known[v] for v in values if isinstance(v, str) and v in known)
    return Caller(oid.strip(), name[:256], roles)


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
    from fleet.service.tokens import InvalidToken

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

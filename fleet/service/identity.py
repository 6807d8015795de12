"""Who calls the API and what they may do: the caller of a validated token, and the roles.

A caller is the token's ``oid`` (the Entra ID object id: stable, unlike a name or an e-mail
address), shown by its ``name`` (else ``preferred_username``, else the ``oid``). Its roles are
the app roles of the ``roles`` claim:

- ``Fleet.Viewer``: read sweeps, reports, jobs, the kill switch, the audit trail, metrics;
- ``Fleet.Operator``: start sweeps, plans and remediation jobs; cancel and resume jobs;
- ``Fleet.Approver``: approve a job's waves (never a job it created);
- ``Fleet.Admin``: all of the above, and the kill switch.

Every Fleet role can read (someone who may act on a job may see it); only Admin implies the
others. Roles that fleet does not know are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fleet.core.duties import Actor


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

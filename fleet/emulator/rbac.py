"""Optional role enforcement per principal, for least-privilege tests.

Off until a role is assigned. ``POST /_emulator/roles {"principal": P, "actions": [...]}``
restricts principal P to those ARM actions (``fnmatch`` patterns, case-insensitive, e.g.
``Microsoft.KubernetesConfiguration/*/read``); the principal ``"*"`` sets the actions of every
principal without its own entry. A request whose action is not allowed gets 403
``AuthorizationFailed`` with ARM's message. Principals are what the emulator derives from the
bearer token (the JWT's ``oid``/``sub``, else a hash of the token).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from fleet.emulator.errors import AuthorizationFailed

DEFAULT = "*"


class Roles:
    """Allowed actions per principal."""

    def __init__(self) -> None:
        self._roles: dict[str, tuple[str, ...]] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._roles)

    def assign(self, principal: str, actions: list[str]) -> None:
        self._roles[principal] = tuple(a.lower() for a in actions)

    def clear(self) -> None:
        self._roles.clear()

    def to_json(self) -> list[dict[str, Any]]:
        return [{"principal": p, "actions": list(a)} for p, a in self._roles.items()]

    def allowed(self, principal: str, action: str) -> bool:
        if not self._roles:
            return True
        patterns = self._roles.get(principal, self._roles.get(DEFAULT))
        if patterns is None:
            return True
        wanted = action.lower()
        return any(fnmatchcase(wanted, p) for p in patterns)

    def authorize(self, principal: str, action: str, scope: str) -> None:
        """Raise ``AuthorizationFailed`` unless ``principal`` may do ``action``."""
        if not self.allowed(principal, action):
            raise AuthorizationFailed(
                f"The client '{principal}' with object id '{principal}' does not have "
                f"authorization to perform action '{action}' over scope '{scope}' or the scope "
                "is invalid. If access was recently granted, please refresh your credentials."
            )

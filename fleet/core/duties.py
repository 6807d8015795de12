"""Separation of duties: who acts on a job, and when a wave counts as approved.

An ``Actor`` is whoever starts, approves or cancels a job, or flips the kill switch: a caller
the service authenticated (its Entra ID object id, ``oid``, and display name), or a person at
the command line of this installation (no ``oid``, the OS user name). The rules of approvals
are pure functions over the approvals a job has recorded:

- the creator of a job never approves it (``check_approver`` refuses, and an approval that
  slipped in under the creator's ``oid`` is not counted either);
- a wave that needs ``N`` approvers goes on once ``N`` distinct approvers approved it;
  one person approving twice counts once.

Only authenticated identities can be compared: a job started at the command line has no
creator ``oid``, so nobody is excluded from approving it (whoever holds the database's
credentials is trusted with the whole installation anyway), while the N-distinct rule still
holds (the OS user name is the approver's key then, prefixed ``local:``).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fleet.core.errors import ApprovalRefused


def os_user() -> str:
    """The OS user running this process (``unknown`` in containers without one)."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an authenticated caller (``oid`` set) or a local user (``oid`` None)."""

    name: str
    oid: str | None = None
    #: Where the action came from: ``api`` (the service) or ``cli`` (this machine).
    via: str = "cli"

    @classmethod
    def local(cls) -> Actor:
        return cls(os_user(), None, "cli")

    @property
    def key(self) -> str:
        """What makes two approvals the same approver's."""
        return self.oid or f"local:{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"oid": self.oid, "name": self.name, "via": self.via}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Actor | None:
        if not data:
            return None
        return cls(str(data.get("name") or ""), data.get("oid"), str(data.get("via") or "cli"))


def approver_key(approval: Mapping[str, Any]) -> str:
    """The approver of one recorded approval (older records carry only ``by``)."""
    return str(approval.get("oid") or f"local:{approval.get('by') or ''}")


def check_approver(creator: Actor | None, approver: Actor) -> None:
    """Refuse the creator of a job as its approver (``ApprovalRefused``)."""
    if creator is not None and creator.oid and approver.oid == creator.oid:
        raise ApprovalRefused(
            "the creator of a job cannot approve it (separation of duties): another approver must"
        )


def approvers_of(
    approvals: Iterable[Mapping[str, Any]], wave: str, creator: Actor | None
) -> list[str]:
    """The distinct approvers counted for ``wave``, in the order they approved."""
    excluded = creator.oid if creator is not None and creator.oid else None
    seen: list[str] = []
    for a in approvals:
        if a.get("wave") != wave:
            continue
        who = approver_key(a)
        if who == excluded or who in seen:
            continue
        seen.append(who)
    return seen


def wave_approved(
    approvals: Iterable[Mapping[str, Any]], wave: str, creator: Actor | None, required: int
) -> bool:
    """True once ``required`` distinct approvers (the creator never among them) approved."""
    return len(approvers_of(approvals, wave, creator)) >= max(1, required)

"""The limits of an automatic remediation job (``remediation.auto``; docs/enforcement.md; pure).

An automatic job follows a scheduled sweep with no person involved, so it may only make the
changes its policy allows explicitly: creates (``+``, what is missing on a cluster) by default,
updates (``~``, drift and version nudges) and deletes (``-``) only with ``update: true`` and
``delete: true``. What it may not do waits for a person: the cluster is skipped with the
reason (``auto-limits``). One run writes at most ``maxClustersPerRun`` clusters, the first ones
in their stable wave order; the others are ``deferred`` to the next run (``run-limit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleet.apply.waves import position
from fleet.plan.actions import Action
from fleet.policy.timing import AutoRemediation

_CHANGES = {"+": "create", "~": "update", "-": "delete"}


@dataclass(frozen=True)
class AutoJob:
    """What an automatic job may do, and what started it."""

    limits: AutoRemediation
    #: What started the job, e.g. ``schedule:platform-baseline`` (recorded as its creator).
    trigger: str

    def to_json(self) -> dict[str, Any]:
        return {
            "limits": self.limits.model_dump(mode="json", by_alias=True),
            "trigger": self.trigger,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AutoJob | None:
        if not data:
            return None
        return cls(AutoRemediation.model_validate(data["limits"]), str(data["trigger"]))


def allowed(action: Action, limits: AutoRemediation) -> bool:
    kind = _CHANGES.get(action.change, "update")
    return bool(getattr(limits, kind))


def filter_auto(actions: Sequence[Action], auto: AutoJob | None) -> tuple[list[Action], str | None]:
    """The actions an automatic job may send, and why the others wait (None: all may)."""
    if auto is None:
        return list(actions), None
    kept = [a for a in actions if allowed(a, auto.limits)]
    dropped = [a for a in actions if not allowed(a, auto.limits)]
    if not dropped:
        return kept, None
    kinds = sorted({_CHANGES.get(a.change, "update") for a in dropped})
    reasons = sorted({str(r) for a in dropped for r in a.reasons})
    return kept, (
        f"remediation.auto may not {' or '.join(kinds)} ({', '.join(reasons[:3])}): "
        f"a person runs fleet remediate, or the policy says {kinds[0]}: true"
    )


def over_limit(cluster_ids: Sequence[str], limit: int) -> list[str]:
    """The clusters beyond the run's limit, in the stable order waves write them."""
    ordered = sorted(cluster_ids, key=lambda c: (position(c), c.lower()))
    return ordered[limit:]


def next_run(schedule: str | None, now: datetime) -> datetime | None:
    """When the policy's next scheduled sweep (and so the next automatic run) is due."""
    if schedule is None:
        return None
    from croniter import croniter

    following: datetime = croniter(schedule, now.astimezone(UTC)).get_next(datetime)
    return following.astimezone(UTC)

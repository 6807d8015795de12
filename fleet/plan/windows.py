"""When remediation may write a cluster, and when it may next (pure; docs/windows.md).

A cluster's *gate* is made of the time rules of the enforce policies whose actions it would
get: every such policy with ``remediation.windows`` must have one of its windows open, none of
their ``freezes`` may cover the moment, and when one of them says ``respectAksMaintenance`` an
AKS cluster must be inside its own planned maintenance window (``fleet.plan.maintenance``).
``Gate.state(now)`` says whether the gate is open now and, when it is not, why and when it
opens next: the first moment every rule allows at once, found by jumping from one rule's next
opening to the next (within ``HORIZON``). A closed gate makes the cluster ``deferred``: never
written, never a failure, on the retry list with its next window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from fleet.plan.maintenance import AksMaintenance, schedule_of
from fleet.policy.models import Policy
from fleet.policy.timing import Freeze, MaintenanceWindow

#: How far ahead a next window is looked for.
HORIZON = timedelta(days=400)
_MAX_STEPS = 200
Why = Literal["window", "freeze", "aks-maintenance"]
#: Which rule explains a closed gate best, when several close it (a freeze says the most).
_EXPLAINS = ("freeze", "aks-maintenance", "window")


class WindowState(BaseModel):
    """Whether a cluster may be written now; if not, why and from when (the plan shows it)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    open: bool
    #: Now when open; the next moment the gate opens when closed (None: none in 400 days).
    next_window: datetime | None = None
    #: What closes it now (``window``, ``freeze``, ``aks-maintenance``) and why, in words.
    category: Why | None = None
    reason: str | None = None

    def describe(self) -> str:
        if self.open:
            return "open now"
        when = self.next_window.isoformat() if self.next_window else "none within 400 days"
        return f"{self.reason}; next window {when}"


@dataclass(frozen=True)
class Closed:
    """A rule that does not allow the moment asked about, and when it next does."""

    category: Why
    reason: str
    until: datetime | None


class Rule(Protocol):
    def closed(self, at: datetime) -> Closed | None: ...


def window_open(window: MaintenanceWindow, at: datetime) -> bool:
    """True when ``at`` is inside an opening of ``window`` (its latest one is enough)."""
    from croniter import croniter

    local = at.astimezone(window.zone).replace(second=0, microsecond=0)
    last: datetime = croniter(window.cron, local + timedelta(seconds=1)).get_prev(datetime)
    # In UTC: a window lasts its duration even across a DST change.
    begins = last.astimezone(UTC)
    return begins <= at < begins + window.length


def next_opening(window: MaintenanceWindow, at: datetime) -> datetime:
    """The first time ``window`` opens after ``at``."""
    from croniter import croniter

    following: datetime = croniter(window.cron, at.astimezone(window.zone)).get_next(datetime)
    return following.astimezone(UTC)


@dataclass(frozen=True)
class PolicyWindows:
    policy: str
    windows: tuple[MaintenanceWindow, ...]

    def closed(self, at: datetime) -> Closed | None:
        if any(window_open(w, at) for w in self.windows):
            return None
        names = ", ".join(w.label for w in self.windows)
        until = min(next_opening(w, at) for w in self.windows)
        return Closed("window", f"outside the windows of policy {self.policy} ({names})", until)


@dataclass(frozen=True)
class FreezeRule:
    policy: str
    freeze: Freeze

    def closed(self, at: datetime) -> Closed | None:
        begins, ends = self.freeze.bounds()
        if not begins <= at < ends:
            return None
        return Closed(
            "freeze",
            f"change freeze of policy {self.policy} ({self.freeze.reason}) until "
            f"{ends.astimezone(UTC).isoformat()}",
            ends.astimezone(UTC),
        )


@dataclass(frozen=True)
class AksRule:
    maintenance: AksMaintenance

    def closed(self, at: datetime) -> Closed | None:
        if self.maintenance.is_open(at):
            return None
        reason = self.maintenance.error or (
            f"outside the cluster's AKS maintenance window ({self.maintenance.name})"
        )
        return Closed("aks-maintenance", reason, self.maintenance.next_open(at))


@dataclass(frozen=True)
class Gate:
    """The time rules one cluster's writes must pass."""

    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def state(self, now: datetime) -> WindowState:
        at, first = now, None
        for _ in range(_MAX_STEPS):
            blocks = [c for c in (r.closed(at) for r in self.rules) if c is not None]
            if not blocks:
                if first is None:
                    return WindowState(open=True, next_window=now)
                return WindowState(
                    open=False,
                    next_window=at.astimezone(UTC),
                    category=first.category,
                    reason=first.reason,
                )
            first = first or min(blocks, key=lambda b: _EXPLAINS.index(b.category))
            untils = [b.until for b in blocks]
            if any(u is None for u in untils):
                break
            at = max(u for u in untils if u is not None)
            if at > now + HORIZON:
                break
        assert first is not None
        return WindowState(open=False, category=first.category, reason=first.reason)


def governing(policies: Sequence[Policy], owners: Iterable[str]) -> list[Policy]:
    """The enforce policies among ``owners`` (the policies of the actions a cluster gets)."""
    wanted = set(owners)
    return [p for p in policies if p.name in wanted and p.spec.mode == "enforce"]


def needs_maintenance(policies: Iterable[Policy], cluster_type: str) -> bool:
    """True when the gate of an AKS cluster needs its maintenance configurations read."""
    return cluster_type == "managedClusters" and any(
        p.spec.remediation.respect_aks_maintenance for p in policies
    )


def gate_for(
    policies: Iterable[Policy],
    cluster_type: str,
    maintenance: Sequence[dict[str, Any]] | None = None,
    maintenance_error: str | None = None,
) -> Gate:
    """The gate of a cluster whose writes ``policies`` own; ``maintenance``: its AKS
    maintenance configurations as ARM returned them (when ``needs_maintenance``), or why they
    could not be read (the gate is then closed: fleet cannot know the window)."""
    rules: list[Rule] = []
    aks = False
    for policy in policies:
        remediation = policy.spec.remediation
        if remediation.windows:
            rules.append(PolicyWindows(policy.name, tuple(remediation.windows)))
        rules += [FreezeRule(policy.name, f) for f in remediation.freezes]
        aks = aks or remediation.respect_aks_maintenance
    if aks and cluster_type == "managedClusters" and maintenance_error is not None:
        unknown = AksMaintenance("maintenanceConfigurations", error=maintenance_error)
        rules.append(AksRule(unknown))
    elif aks and cluster_type == "managedClusters" and maintenance:
        schedule = schedule_of(maintenance)
        if schedule is not None:
            rules.append(AksRule(schedule))
    return Gate(tuple(rules))

"""Run a sweep (or a plan) end to end on the local engine: the function the CLI, the demo and
the tests call.

It opens the Azure session and the history database, resolves the subscriptions in scope,
runs ``Sweep`` with a history sink (verdicts stored in batches as they arrive), and returns the
outcome. The caller renders it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleet.apply import secrets
from fleet.azure.clock import Clock, make_clock
from fleet.azure.inventory import ArmInventory, Inventory
from fleet.azure.session import AzureSession
from fleet.jobs import killswitch
from fleet.jobs.sweep import Progress, Sweep, SweepOutcome
from fleet.jobs.work import scope
from fleet.notify import announce
from fleet.plan import document
from fleet.plan.pipeline import Judgement
from fleet.policy.loading import PolicySet
from fleet.record.history import History, open_history
from fleet.settings import Settings

log = logging.getLogger(__name__)

#: Verdicts are written to the history database in batches of this many clusters.
HISTORY_BATCH = 500


def make_inventory(settings: Settings, session: AzureSession) -> Inventory:
    """The inventory ``FLEET_INVENTORY`` asks for."""
    if settings.inventory == "graph":
        from fleet.azure.graph import GraphInventory

        return GraphInventory(session)
    return ArmInventory(session)


class HistorySink:
    """Stores verdicts as they arrive, in batches (one transaction per batch)."""

    def __init__(self, history: History, sweep_id: str) -> None:
        self._history = history
        self._sweep_id = sweep_id
        self._batch: list[dict[str, Any]] = []
        self.stored = 0

    def add(self, judgement: Judgement) -> None:
        self._batch.append(judgement.verdict.to_report())
        if len(self._batch) >= HISTORY_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._history.add_clusters(self._sweep_id, self._batch)
            self.stored += len(self._batch)
            self._batch = []


@dataclass
class Environment:
    """The I/O edges of one run: settings, session, inventory, history, and the clock every
    part of a job takes "now" from (``FLEET_CLOCK``; built from the settings when not given)."""

    settings: Settings
    session: AzureSession
    inventory: Inventory
    history: History | None
    clock: Clock | None = None

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = make_clock(self.settings)

    def now(self) -> datetime:
        assert self.clock is not None
        return self.clock()


@contextmanager
def environment(
    settings: Settings, *, record: bool = True, session: AzureSession | None = None
) -> Iterator[Environment]:
    own_session = session is None
    session = session or AzureSession(settings)
    history = open_history(settings) if record else None
    try:
        yield Environment(settings, session, make_inventory(settings, session), history)
    finally:
        if history is not None:
            history.close()
        if own_session:
            session.close()


def kill_switch_halt(history: History | None) -> Callable[[], str | None] | None:
    """A ``halt`` for ``Sweep``: the kill switch's description while it is engaged."""
    if history is None:
        return None

    def halt() -> str | None:
        found = killswitch.state(history)
        return found.describe() if found.engaged else None

    return halt


def run_sweep(
    env: Environment,
    policy_set: PolicySet,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    now: datetime | None = None,
    keep_judgements: bool = True,
    sweep_id: str | None = None,
) -> SweepOutcome:
    """Sweep every cluster the policies target; record it when the environment has history.

    With a history database, the kill switch (``fleet.jobs.killswitch``) is looked at before
    each cluster is taken: engaged, the sweep stops there (``SweepOutcome.stopped_by``); once
    recorded, what it found is announced (``fleet.notify.announce.sweep_finished``).
    """
    settings = env.settings
    subscriptions = env.inventory.subscriptions(scope(policy_set, settings.subscriptions))
    applied = env.history.applied_fingerprints(None) if env.history is not None else {}
    fingerprints = secrets.fingerprints_for(
        policy_set, secrets.fingerprint_key(settings), applied, env.session.vaults()
    )
    sweep = Sweep(
        session=env.session,
        inventory=env.inventory,
        policy_set=policy_set,
        subscriptions=subscriptions,
        fingerprints=fingerprints,
        now=now or env.now(),
        progress=progress,
        keep_judgements=keep_judgements,
        cancel=cancel,
        halt=kill_switch_halt(env.history),
        sweep_id=sweep_id,
    )
    sink: HistorySink | None = None
    if env.history is not None:
        placeholder = sweep.info(finished=None, targets=0, complete=False)
        env.history.start_sweep(placeholder.to_report())
        sink = HistorySink(env.history, sweep.id)
        sweep.sinks.append(sink)
    outcome = sweep.run()
    if env.history is not None and sink is not None:
        sink.flush()
        env.history.finish_sweep(sweep.id, outcome.info.to_report(), outcome.summary)
        announce.sweep_finished(settings, env.history, sweep.id)
    return outcome


def sweep_plan(outcome: SweepOutcome) -> dict[str, Any]:
    """The saved plan of a sweep's judgements (``fleet plan --out plan.json``, ``POST
    /api/v1/plans``), which ``fleet remediate --plan`` applies exactly."""
    return document.build(
        (j.plan for j in outcome.judgements),
        created_at=datetime.now(UTC),
        sweep_id=outcome.info.id,
        policy_revision=outcome.info.policy_revision,
        policies=outcome.info.policies,
        subscriptions=outcome.info.subscriptions,
    ).to_json()

"""Shared helpers of the Resource Graph tests: a generated fleet with every defect kind, an
in-process sweep against the emulator with either inventory, and verdicts in comparable form.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleet.azure.graph import GraphInventory
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator
from fleet.jobs.runs import environment, run_sweep
from fleet.jobs.sweep import SweepOutcome
from fleet.policy.loading import PolicySet, load
from fleet.settings import Settings
from tests.conftest import POLICIES

CLUSTERS = 100
SUBSCRIPTIONS = 3
SEED = 11  # with 100 clusters this seed places every defect kind (tests/e2e relies on it too)

#: One cluster's verdict, comparable across sweeps: state, policy states, findings.
Comparable = tuple[str, tuple[tuple[str, str], ...], tuple[tuple[Any, ...], ...]]


@pytest.fixture(scope="package")
def fleet() -> dict[str, Any]:
    return generate(clusters=CLUSTERS, subscriptions=SUBSCRIPTIONS, seed=SEED)


@pytest.fixture(scope="package")
def policy_set() -> PolicySet:
    return load([POLICIES])


def settings_for(emu: RunningEmulator, state_dir: Path, **extra: Any) -> Settings:
    return Settings(
        arm_endpoint=emu.endpoint,
        arm_ca_bundle=str(emu.ca_bundle),
        auth="emulator",
        state_dir=state_dir,
        lro_poll_interval=0,
        **extra,
    )


def sweep(
    emu: RunningEmulator,
    policy_set: PolicySet,
    state_dir: Path,
    *,
    inventory: str,
    graph: Callable[[Any], GraphInventory] | None = None,
) -> tuple[SweepOutcome, Any]:
    """One in-process sweep (no history); ``graph`` builds a custom GraphInventory."""
    emu.admin.reset_throttle()
    with environment(settings_for(emu, state_dir, inventory=inventory), record=False) as env:
        if graph is not None:
            env.inventory = graph(env.session)
        return run_sweep(env, policy_set), env.inventory


def comparable(report: dict[str, Any]) -> Comparable:
    """A verdict (report JSON of one cluster) without what may legitimately differ between
    readers (messages quote the reader's wording of the same facts)."""
    return (
        report["state"],
        tuple((p["name"], p["state"]) for p in report["policies"]),
        tuple(
            sorted(
                (
                    f["code"],
                    f.get("policy"),
                    f["resource"].lower(),
                    f.get("path"),
                    f.get("severity"),
                    repr(f.get("desired")),
                    repr(f.get("actual")),
                )
                for f in report["findings"]
            )
        ),
    )


def verdicts(outcome: SweepOutcome) -> dict[str, Comparable]:
    return {j.verdict.id.lower(): comparable(j.verdict.to_report()) for j in outcome.judgements}

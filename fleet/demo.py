"""``fleet demo``: the main job on the embedded default, with no Azure account.

It generates a fleet with every kind of defect (docs/scenario.md), serves it from the ARM
emulator in this process (HTTPS on loopback, ARM's throttling, a realistic latency), sweeps the
example policies through the real Azure SDK exactly as against Azure, records the sweep in a
history database in the demo directory, and writes the HTML and JSON reports there. Running it
again adds a sweep, so the reports show a trend and what changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.emulator.generate import dumps, generate
from fleet.emulator.testing import running_emulator
from fleet.jobs.reporting import render_recorded
from fleet.jobs.runs import environment, run_sweep
from fleet.jobs.sweep import Progress, SweepOutcome
from fleet.policy.loading import load
from fleet.record.history import open_history
from fleet.settings import Settings


@dataclass
class DemoResult:
    outcome: SweepOutcome
    directory: Path
    snapshot: Path
    html: Path
    json: Path
    database: Path


def default_policies() -> Path:
    """The example policies: ``policies/`` of the checkout, else of the current directory."""
    here = Path(__file__).resolve().parent.parent / "policies"
    return here if here.is_dir() else Path("policies")


@contextmanager
def demo_fleet(
    directory: Path,
    *,
    clusters: int = 300,
    subscriptions: int = 3,
    seed: int = 7,
    latency_ms: float = 20.0,
) -> Iterator[Settings]:
    """The demo's fleet served by the emulator while the block runs, and the settings that
    point fleet at it (with the history database in ``directory``). ``fleet demo`` sweeps it;
    ``fleet serve --dev --demo`` serves the API over it."""
    directory.mkdir(parents=True, exist_ok=True)
    snapshot = generate(clusters=clusters, subscriptions=subscriptions, seed=seed)
    (directory / "fleet-snapshot.json").write_bytes(dumps(snapshot))
    with running_emulator(
        snapshot,
        throttle="arm",
        latency_ms=latency_ms,
        latency_p99_ms=latency_ms * 8,
        page_size=100,
        seed=seed,
    ) as emu:
        yield Settings(
            arm_endpoint=emu.endpoint,
            arm_ca_bundle=str(emu.ca_bundle),
            auth="emulator",
            database_url=f"sqlite:///{directory / 'fleet.db'}",
            # The demo's database is its own, in its own directory: it is always brought to
            # this fleet's schema, whatever FLEET_DATABASE_AUTO_UPGRADE says for shared ones.
            database_auto_upgrade=True,
            state_dir=directory,
            subscriptions=None,
        )


def run_demo(
    *,
    directory: Path,
    clusters: int = 300,
    subscriptions: int = 3,
    seed: int = 7,
    policies: Path | None = None,
    latency_ms: float = 20.0,
    progress: Progress | None = None,
) -> DemoResult:
    """Generate, serve, sweep, record, report. Returns where everything was written."""
    policy_set = load([policies or default_policies()])
    snapshot_path = directory / "fleet-snapshot.json"
    database = directory / "fleet.db"
    with (
        demo_fleet(
            directory,
            clusters=clusters,
            subscriptions=subscriptions,
            seed=seed,
            latency_ms=latency_ms,
        ) as settings,
        environment(settings) as env,
    ):
        outcome = run_sweep(env, policy_set, progress=progress)
    html = directory / "report.html"
    report_json = directory / "report.json"
    with open_history(settings) as history, html.open("w", encoding="utf-8") as out:
        render_recorded(history, outcome.info.id, "html", out)
    report: dict[str, Any] = outcome.report()
    report_json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return DemoResult(outcome, directory, snapshot_path, html, report_json, database)

"""``fleet.notify.announce`` over a history database: which sweep is the baseline, what an
incomplete sweep announces, and the beat's look for scheduled sweeps that did not run (also
through the beat's task, ``fleet.notify.tick``, called as a function)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.notify import announce
from fleet.policy.loading import load
from fleet.record.history import History, open_history
from fleet.settings import Settings
from tests.notify.conftest import Receiver
from tests.report.sample import BASELINE, SWEEP_IDS, reports

SCHEDULED = f"""\
apiVersion: fleet/v1
kind: FluxPolicy
metadata: {{name: {BASELINE}}}
spec:
  mode: audit
  targets: {{subscriptions: ["*"]}}
  extension: {{autoUpgradeMinorVersion: true, releaseTrain: Stable}}
  remediation: {{schedule: "0 6 * * *"}}
"""


def _settings(tmp: Path) -> Settings:
    # A target that is never reached: delivery is off (0 s), only the outbox is looked at.
    return Settings(
        state_dir=tmp,
        notify_urls="env:FLEET_UNSET_HOOK",
        notify_deliver_seconds=0,
        notify_compliance_drop=100,
    )


def _history(tmp: Path, sweeps: list[dict[str, Any]]) -> History:
    history = open_history(f"sqlite:///{tmp}/fleet.db", upgrade=True)
    for report in sweeps:
        history.record_sweep(report)
    return history


def _queued(history: History) -> list[tuple[str, str]]:
    return sorted((r["type"], r["subject"]) for r in history.notifications(limit=50))


def test_the_baseline_is_the_previous_complete_sweep_of_the_same_policies(tmp_path: Path) -> None:
    first, second, third = reports()
    other = copy.deepcopy(second)
    other["sweep"].update(id="20261124T120000Z-other", policies=["something-else"])
    other["sweep"]["startedAt"] = "2026-11-24T12:00:00+00:00"
    with _history(tmp_path, [first, second, other, third]) as history:
        assert announce.baseline(history, SWEEP_IDS[2], third["sweep"]["policies"]) == SWEEP_IDS[1]
        announce.sweep_finished(_settings(tmp_path), history, SWEEP_IDS[2])
        assert _queued(history) == [
            ("fleet.sweep.drift", SWEEP_IDS[2]),
            ("fleet.sweep.fixed", SWEEP_IDS[2]),
        ]
        # Announced once: the same sweep again (a redelivered finaliser) adds nothing.
        announce.sweep_finished(_settings(tmp_path), history, SWEEP_IDS[2])
        assert len(_queued(history)) == 2


def test_an_incomplete_sweep_announces_nothing(tmp_path: Path) -> None:
    first, second, _ = reports()
    second["sweep"]["complete"] = False
    with _history(tmp_path, [first, second]) as history:
        announce.sweep_finished(_settings(tmp_path), history, SWEEP_IDS[1])
        assert _queued(history) == []


def test_a_scheduled_sweep_that_did_not_run(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(SCHEDULED)
    policy_set = load([tmp_path / "p.yaml"])
    with _history(tmp_path, reports()) as history:  # daily at 06:00, the last on 11-25
        settings = _settings(tmp_path)
        on_time = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
        assert announce.schedules_missed(settings, history, policy_set, on_time) == []
        late = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
        [event] = announce.schedules_missed(settings, history, policy_set, late)
        assert event.data["dueAt"] == "2026-11-27T06:00:00+00:00"
        announce.schedules_missed(settings, history, policy_set, late)  # the beat, a minute on
        assert _queued(history) == [("fleet.sweep.missed", BASELINE)]


def test_the_beat_announces_missed_sweeps_and_delivers(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, clean_fleet_env: Path
) -> None:
    from workers.schedules import notify_tick

    (tmp_path / "p.yaml").write_text(SCHEDULED)
    url = f"sqlite:///{tmp_path}/fleet.db"
    _history(tmp_path, reports()).close()  # the last sweep of the daily policy: 2026-11-25
    for name, value in {
        "FLEET_DATABASE_URL": url,
        "FLEET_POLICY_PATHS": str(tmp_path / "p.yaml"),
        "FLEET_NOTIFY_URLS": "env:FLEET_TEST_HOOK",
        "FLEET_TEST_HOOK": receiver.url,
    }.items():
        monkeypatch.setenv(name, value)
    done = notify_tick()
    assert done["missed"] == [BASELINE] and done["delivered"] == 1
    [event] = receiver.events("fleet.sweep.missed")
    assert event["data"]["policy"] == BASELINE
    assert notify_tick()["delivered"] == 0  # the same missed run is announced once

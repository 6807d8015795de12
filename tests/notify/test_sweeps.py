"""Sweeps announce what changed, through the local engine, to a webhook receiver on loopback.

Each test sweeps the example policies twice (or more) against the emulator with the receiver
configured as ``FLEET_NOTIFY_URLS=env:FLEET_TEST_HOOK``, drifting governed flux configurations
in between through the emulator's admin API: the first sweep is the baseline (nothing to
announce), the second announces what is new, later ones only what changed again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fleet.cli import app
from fleet.emulator.testing import RunningEmulator
from tests.notify.conftest import HOOK_PATH, Receiver, cluster_ids, drift, notify_env, sweep

BRANCH = "/properties/gitRepository/repositoryRef/branch"


def _status(env: dict[str, str]) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["notify", "status", "-o", "json"], env=env)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_one_drift_event_names_each_newly_drifted_cluster(
    emulator: RunningEmulator, receiver: Receiver, tmp_path: Path
) -> None:
    env = notify_env(emulator, tmp_path, receiver, FLEET_NOTIFY_COMPLIANCE_DROP=5)
    first = json.loads(sweep(env).stdout)
    assert receiver.requests == []  # the first sweep is the baseline
    drifted = drift(emulator, first, 3)
    second = json.loads(sweep(env).stdout)
    [event] = receiver.events("fleet.sweep.drift")
    assert receiver.events("fleet.sweep.fixed") == []
    assert cluster_ids(event) == sorted(drifted)
    assert {(f["code"], f["path"]) for f in event["data"]["findings"]} == {
        ("FLUX_CONFIG_DRIFT", BRANCH)
    }
    assert event["specversion"] == "1.0" and event["source"] == "/fleet"
    assert event["subject"] == second["sweep"]["id"] == event["data"]["sweepId"]
    assert event["data"]["previousSweepId"] == first["sweep"]["id"]
    assert event["data"]["digest"] is False
    request = receiver.requests[0]
    assert request["headers"]["content-type"] == "application/cloudevents+json"
    assert request["path"] == HOOK_PATH
    # 3 of 30 clusters fell out of compliance: 10 points, above the 5-point threshold.
    [drop] = receiver.events("fleet.sweep.compliance_dropped")
    percent = drop["data"]["compliancePercent"]
    assert percent == {
        "from": first["summary"]["compliancePercent"],
        "to": second["summary"]["compliancePercent"],
    }

    # Nothing changed: nothing is sent again.
    sweep(env)
    assert len(receiver.events()) == 2

    # Put the branches back: one event names the same clusters as fixed.
    for resource in emulator.admin.snapshot()["resources"]:
        ref = (resource.get("properties") or {}).get("gitRepository", {}).get("repositoryRef")
        if ref and ref.get("branch") == "notify-drift":
            ref["branch"] = "main"
            emulator.admin.put_resource(resource)
    sweep(env)
    [fixed] = receiver.events("fleet.sweep.fixed")
    assert cluster_ids(fixed) == sorted(drifted)
    assert len(receiver.events("fleet.sweep.drift")) == 1
    status = _status(env)
    assert status["totals"] == {"delivered": 3}


def test_a_digest_above_the_threshold(
    emulator: RunningEmulator, receiver: Receiver, tmp_path: Path
) -> None:
    env = notify_env(emulator, tmp_path, receiver, FLEET_NOTIFY_DIGEST_THRESHOLD=2)
    first = json.loads(sweep(env).stdout)
    drifted = drift(emulator, first, 4)
    second = json.loads(sweep(env).stdout)
    [event] = receiver.events("fleet.sweep.drift")
    data = event["data"]
    assert data["digest"] is True and "findings" not in data
    assert data["counts"] == {"findings": 4, "clusters": 4}
    assert sorted(c["clusterId"] for c in data["clusters"]) == sorted(drifted)
    assert data["more"] == (
        f"fleet report diff {first['sweep']['id']} {second['sweep']['id']} --format json"
    )


def test_retries_after_the_receiver_fails(
    emulator: RunningEmulator, receiver: Receiver, tmp_path: Path
) -> None:
    env = notify_env(emulator, tmp_path, receiver)
    first = json.loads(sweep(env).stdout)
    drift(emulator, first, 1)
    receiver.script = [500, 503]
    sweep(env)
    assert [r["status"] for r in receiver.requests] == [500, 503, 200]
    assert len({r["body"] for r in receiver.requests}) == 1  # the same event each time
    [row] = _status(env)["recent"]
    assert (row["status"], row["attempts"], row["lastError"]) == ("delivered", 3, "HTTP 503")


def test_a_receiver_that_never_answers_does_not_fail_the_sweep(
    emulator: RunningEmulator, receiver: Receiver, tmp_path: Path
) -> None:
    env = notify_env(
        emulator,
        tmp_path,
        receiver,
        FLEET_NOTIFY_TIMEOUT="0.5",
        FLEET_NOTIFY_DELIVER_SECONDS="1",
        FLEET_NOTIFY_BACKOFF_SECONDS="30",
    )
    first = json.loads(sweep(env).stdout)
    drift(emulator, first, 1)
    receiver.script = ["hang"]
    second = sweep(env)
    assert json.loads(second.stdout)["sweep"]["complete"] is True
    [row] = _status(env)["recent"]
    assert (row["status"], row["attempts"], row["lastError"]) == ("pending", 1, "timed out")
    assert receiver.events() == []

    # Later: `fleet notify send --now` delivers it without waiting for its backoff.
    sent = CliRunner().invoke(app, ["notify", "send", "--now"], env=env)
    assert sent.exit_code == 0, sent.stdout + sent.stderr
    assert json.loads(sent.stdout)["delivered"] == 1
    assert len(receiver.events("fleet.sweep.drift")) == 1


def test_the_webhook_url_is_never_shown_logged_or_stored(
    emulator: RunningEmulator, receiver: Receiver, tmp_path: Path
) -> None:
    # A literal URL this time (the harder case: no reference to hide behind).
    env = notify_env(emulator, tmp_path, receiver, FLEET_NOTIFY_URLS=receiver.url)
    outputs = []
    first = sweep(env, "-vv")
    outputs += [first.stdout, first.stderr]
    drift(emulator, json.loads(first.stdout), 2)
    receiver.script = [500]
    second = sweep(env, "-vv")
    outputs += [second.stdout, second.stderr]
    for args in (["notify", "status"], ["notify", "status", "-o", "json"], ["notify", "send"]):
        result = CliRunner().invoke(app, [*args, "-vv"], env=env)
        outputs += [result.stdout, result.stderr]
    assert len(receiver.events("fleet.sweep.drift")) == 1
    assert "retry in" in second.stderr  # the failed attempt was logged, without the URL
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("fleet.db*"))
    secret = HOOK_PATH.rsplit("/", 1)[-1]
    for text in outputs:
        assert secret not in text and receiver.url not in text
    assert secret.encode() not in stored
